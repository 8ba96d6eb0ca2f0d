"""braintrust_migrate as a library: `migrate`, `plan`, `validate`, `verify` and `export` from Python.

Each is a coroutine (`await migrate(...)`); `migrate_sync`, `plan_sync`, `validate_sync`,
`verify_sync` and `export_sync` run one in a fresh event loop (`asyncio.run`) for code that is
not async. `migrate`, `plan` and `verify` read an export folder instead of the source org when
given `from_dir` (what the CLI's `import --from` and `verify --from` do).

Settings come, in this order of precedence, from keyword arguments (`bt_source_api_key=...`;
env var names like `BT_SOURCE_API_KEY` work too), a mapping or a `Settings` given first, the
environment and `.env` (`env_file=None` skips it), and a YAML/JSON `config_file`: the same
layers and checks as the CLI. A mistake raises `ConfigError`, whose `str()` is the one line
the CLI would print; secrets never appear in it, nor in any repr.

The library prints nothing and configures no logging: its records go to the standard
library's `braintrust_migrate.*` loggers, which have no handler unless the host adds one
(liblog.py). Progress reaches the host through `on_event`, called with an `Event` for each
object written (or skipped, failed…) and each batch of rows copied, from the event loop's
thread; an exception it raises stops the run (its state is saved: a re-run resumes it).

Cancelling the task of `migrate` behaves like Ctrl-C in the CLI: the run stops, its state
and an interrupted report are saved, and CancelledError is raised; calling `migrate` again
with the same settings resumes it. A SIGINT/SIGTERM during a run in the main thread stops it
the same way and raises `MigrationInterrupted`, whose `result` is the report so far.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from braintrust_migrate.archive.commands import run_export
from braintrust_migrate.archive.export import ExportResult
from braintrust_migrate.archive.folder import open_folder, open_source
from braintrust_migrate.client import client_for
from braintrust_migrate.config import SETTING_FIELDS, ConfigError, Settings, load_settings
from braintrust_migrate.engine.context import Options
from braintrust_migrate.engine.names import project_names
from braintrust_migrate.engine.progress import ProgressView
from braintrust_migrate.engine.resources import STREAMS
from braintrust_migrate.engine.runner import RunInterrupted, Runner
from braintrust_migrate.engine.secrets_file import Secrets, load_secrets
from braintrust_migrate.redact import scrub
from braintrust_migrate.results import Event, MigrationResult, ValidationResult, VerifyResult
from braintrust_migrate.source import Source
from braintrust_migrate.textsafe import printable
from braintrust_migrate.validate import run_validation
from braintrust_migrate.verify.runner import Verifier

EventHook = Callable[[Event], None]
SettingsLike = Settings | Mapping[str, Any] | None
DEFAULT_ENV_FILE = Path(".env")


class MigrationInterrupted(Exception):
    """A run stopped by SIGINT/SIGTERM; `result` is its report so far (None if it stopped before
    listing anything). Its state is saved: running `migrate` again resumes it."""

    def __init__(self, result: MigrationResult | None) -> None:
        super().__init__("interrupted — run the same migration again to resume")
        self.result = result


def error_line(error: ConfigError) -> str:
    """The one line the CLI prints for `error`: its fix appended, secrets and control characters out."""
    if getattr(error, "one_line", False):
        return str(error)
    fix = getattr(error, "fix", None)
    return printable(scrub(f"{error}; {fix}" if fix else str(error)))


def _as_one_line(error: ConfigError) -> ConfigError:
    """`error` itself (its type kept) with its message made the CLI's line."""
    error.args = (error_line(error),)
    error.one_line = True  # type: ignore[attr-defined]
    return error


def _field(key: str) -> str:
    field = key.strip().lower()
    if field not in SETTING_FIELDS:
        known = ", ".join(sorted(SETTING_FIELDS))
        raise ConfigError(f"unknown setting {key!r}; known settings: {known} (or their env var names)")
    return field


def make_settings(
    settings: SettingsLike = None,
    /,
    *,
    config_file: str | Path | None = None,
    env_file: str | Path | None = DEFAULT_ENV_FILE,
    **values: Any,
) -> Settings:
    """Validated settings from keyword arguments, a mapping or `Settings`, the environment and
    `.env`, and a config file (highest precedence first), or a one-line `ConfigError`.

    Keys are setting names (`bt_source_api_key`) or env var names (`BT_SOURCE_API_KEY`).
    """
    try:
        if isinstance(settings, Settings) and not values:
            return settings
        base: dict[str, Any] = {}
        if isinstance(settings, Settings):
            base = settings.model_dump()
        elif settings is not None:
            base = {_field(str(key)): value for key, value in settings.items()}
        base |= {_field(key): value for key, value in values.items()}
        path = Path(config_file) if config_file is not None else None
        return load_settings(base, config_file=path, env_file=Path(env_file) if env_file else None)
    except ConfigError as error:
        raise _as_one_line(error) from None


def _event(data: dict[str, Any]) -> Event:
    if data["event"] == "rows":
        spec = data["spec"]
        return Event(
            kind="rows",
            type=STREAMS[spec.kind].report_type,
            name=spec.name,
            project=spec.project,
            rows=data["rows"],
            bytes=data["bytes"],
            data={"source_id": spec.src_id, "dest_id": spec.dest_id, "container": spec.kind},
        )
    return Event(
        kind="object",
        type=data["type"],
        name=data.get("name", ""),
        project=data.get("project"),
        action=data["action"],
        reason=data.get("reason"),
        data={k: v for k, v in data.items() if k != "event"},
    )


async def run_migration(
    settings: Settings,
    options: Options,
    secrets: Secrets,
    *,
    progress: ProgressView | None = None,
    on_event: EventHook | None = None,
    source: Source | None = None,
) -> MigrationResult:
    """The run behind `migrate`, `plan` and `import` (an export folder as `source`); the CLI
    passes its progress display."""
    hook = (lambda data: on_event(_event(data))) if on_event else None
    runner = Runner(settings, options, secrets, progress, on_event=hook, source=source)
    inner = asyncio.ensure_future(runner.run())
    try:
        # Shielded: a cancel of this task reaches the run as an interrupt, which saves first.
        run = await asyncio.shield(inner)
    except asyncio.CancelledError:
        if inner.done():
            raise
        runner.interrupted = True
        inner.cancel()
        with contextlib.suppress(RunInterrupted):  # raised once state and report are saved
            await inner
        raise
    except RunInterrupted as stopped:
        partial = stopped.result
        result = None
        if partial is not None:
            result = MigrationResult.from_report(partial.report, partial.report_path, partial.summary_path)
        raise MigrationInterrupted(result) from None
    return MigrationResult.from_report(run.report, run.report_path, run.summary_path)


def _checked(
    settings: SettingsLike,
    config_file: str | Path | None,
    env_file: Any,
    values: Any,
    sides: tuple[str, ...] = ("source", "dest"),
) -> Settings:
    built = make_settings(settings, config_file=config_file, env_file=env_file, **values)
    try:
        # The keys are required: fail on the first missing one before any network call.
        for side in sides:
            built.api_key(side)
    except ConfigError as error:
        raise _as_one_line(error) from None
    return built


async def migrate(
    settings: SettingsLike = None,
    /,
    *,
    overwrite: bool = False,
    fresh: bool = False,
    map_users: bool = False,
    invite_users: bool = False,
    merge_into_existing: bool = False,
    sync_deletes: bool = False,
    follow: bool = False,
    until_idle: float | None = None,
    secrets_file: str | Path | None = None,
    from_dir: str | Path | None = None,
    on_event: EventHook | None = None,
    config_file: str | Path | None = None,
    env_file: str | Path | None = DEFAULT_ENV_FILE,
    **values: Any,
) -> MigrationResult:
    """Copy every selected object and row from the source org into the destination org.

    The options are the CLI's: `overwrite` replaces differing destination objects, `fresh`
    starts a new run instead of resuming, `map_users`/`invite_users` map users by email,
    `merge_into_existing` lets a renamed project land on an existing one, `sync_deletes` deletes
    what this tool created or wrote in the destination whose source has gone, `follow` keeps
    copying changes after the copy until `until_idle` seconds pass without one (or the task is
    cancelled), `secrets_file` is a YAML of secret values, `from_dir` an export folder to read
    instead of the source org (`import --from`). Other keywords are settings (see
    `make_settings`). Raises ConfigError (bad input, one line), ApiError (an org failed),
    MigrationInterrupted.
    """
    if until_idle is not None and not follow:
        raise ConfigError("until_idle needs follow")
    options = Options(
        overwrite=overwrite,
        fresh=fresh,
        map_users=map_users,
        invite_users=invite_users,
        merge_into_existing=merge_into_existing,
        sync_deletes=sync_deletes,
        follow=follow,
        until_idle=until_idle,
    )
    return await _migrate(
        settings, options, secrets_file=secrets_file, from_dir=from_dir, on_event=on_event,
        config_file=config_file, env_file=env_file, values=values,
    )  # fmt: skip


async def plan(
    settings: SettingsLike = None,
    /,
    *,
    overwrite: bool = False,
    map_users: bool = False,
    merge_into_existing: bool = False,
    sync_deletes: bool = False,
    secrets_file: str | Path | None = None,
    from_dir: str | Path | None = None,
    on_event: EventHook | None = None,
    config_file: str | Path | None = None,
    env_file: str | Path | None = DEFAULT_ENV_FILE,
    **values: Any,
) -> MigrationResult:
    """The dry run: read both orgs (or `from_dir` and the destination) and report what
    `migrate` would do; write nothing to either org.

    The result's `counts` say what each object would become, its `containers` how many rows
    each container would copy (`rows_to_copy`); with `sync_deletes`, the report's `deletes` lists
    what --sync-deletes would delete. Only the report files are written, locally.
    """
    options = Options(
        dry_run=True,
        overwrite=overwrite,
        map_users=map_users,
        merge_into_existing=merge_into_existing,
        sync_deletes=sync_deletes,
    )
    return await _migrate(
        settings, options, secrets_file=secrets_file, from_dir=from_dir, on_event=on_event,
        config_file=config_file, env_file=env_file, values=values,
    )  # fmt: skip


async def _migrate(
    settings: SettingsLike,
    options: Options,
    *,
    secrets_file: str | Path | None,
    from_dir: str | Path | None,
    on_event: EventHook | None,
    config_file: str | Path | None,
    env_file: str | Path | None,
    values: dict[str, Any],
) -> MigrationResult:
    try:
        if options.invite_users and not options.map_users:
            raise ConfigError("invite_users needs map_users: invited users are matched by email")
        built = _checked(
            settings, config_file, env_file, values, ("dest",) if from_dir else ("source", "dest")
        )
        source = open_source(Path(from_dir)) if from_dir is not None else None  # every file checked first
        secrets = load_secrets(Path(secrets_file) if secrets_file is not None else None)
        return await run_migration(built, options, secrets, on_event=on_event, source=source)
    except ConfigError as error:
        raise _as_one_line(error) from None


async def verify(
    settings: SettingsLike = None,
    /,
    *,
    map_users: bool = False,
    sample: int | None = None,
    folder: str | Path | None = None,
    from_dir: str | Path | None = None,
    config_file: str | Path | None = None,
    env_file: str | Path | None = DEFAULT_ENV_FILE,
    **values: Any,
) -> VerifyResult:
    """Compare source and destination: objects, rows, and source ids left in the destination.

    `map_users` compares user references by email (as `migrate(map_users=True)` wrote them);
    `sample` checks N random rows per container in full; `folder` is where the report goes
    (default: a new folder under the state directory); `from_dir` an export folder compared in
    place of the source org. Read-only on both orgs.
    """
    if sample is not None and sample < 1:
        raise _as_one_line(ConfigError(f"sample={sample}: allowed: an integer of at least 1"))
    try:
        built = _checked(
            settings, config_file, env_file, values, ("dest",) if from_dir else ("source", "dest")
        )
        source = open_folder(Path(from_dir)) if from_dir is not None else None
        out = Path(folder) if folder is not None else None
        return await run_verify(built, map_users=map_users, folder=out, sample=sample, source=source)
    except ConfigError as error:
        raise _as_one_line(error) from None


async def run_verify(
    settings: Settings,
    *,
    map_users: bool = False,
    folder: Path | None = None,
    sample: int | None = None,
    source: Source | None = None,
) -> VerifyResult:
    """The comparison behind `verify` (and the CLI's `verify` and `migrate --verify`); the source
    may be an export folder."""
    verifier = Verifier(settings, map_users=map_users, folder=folder, sample=sample, source=source)
    done = await verifier.run()
    return VerifyResult.from_report(done.report, done.report_path, done.summary_path)


async def validate(
    settings: SettingsLike = None,
    /,
    *,
    write_check: bool = False,
    config_file: str | Path | None = None,
    env_file: str | Path | None = DEFAULT_ENV_FILE,
    **values: Any,
) -> ValidationResult:
    """Check that both orgs are reachable and usable before migrating anything.

    `write_check` also proves write access on the destination by creating and deleting a
    probe project; without it nothing is written. Failed checks are in the result, not raised.
    """
    try:
        built = _checked(settings, config_file, env_file, values)
        return await run_checks(built, write_check=write_check)
    except ConfigError as error:
        raise _as_one_line(error) from None


async def run_checks(settings: Settings, *, write_check: bool = False) -> ValidationResult:
    """The checks behind `validate` (and the CLI's)."""
    source, dest = client_for(settings, "source"), client_for(settings, "dest")
    async with source, dest:
        checked = await run_validation(
            source,
            dest,
            source_org=settings.bt_source_org_name,
            dest_org=settings.bt_dest_org_name,
            write_check=write_check,
            resources=settings.migration_resources,
            projects=settings.migration_projects,
            state_dir=settings.migration_state_dir,
            project_names=project_names(settings),
        )
    return ValidationResult.from_report(checked.to_dict())


async def export(
    settings: SettingsLike = None,
    /,
    *,
    to: str | Path,
    compression: str = "none",
    fresh: bool = False,
    config_file: str | Path | None = None,
    env_file: str | Path | None = DEFAULT_ENV_FILE,
    **values: Any,
) -> ExportResult:
    """Write the source org (or the selection the settings make) to the folder `to`: objects,
    ACLs, users, rows, pinned dataset versions, attachments with `migration_copy_attachments`,
    and a manifest of every file's sha256. A re-run into the same folder resumes or adds what
    changed; `fresh` starts it over; `compression` is "none" or "gzip". Only the source key
    is needed. Its `ok` is False when any part could not be exported (listed in `failures`)."""
    try:
        built = _checked(settings, config_file, env_file, values, ("source",))
        return await run_export(built, Path(to), compression=compression, fresh=fresh)
    except ConfigError as error:
        raise _as_one_line(error) from None


def export_sync(settings: SettingsLike = None, /, **kwargs: Any) -> ExportResult:
    """`export` for code that is not async."""
    return asyncio.run(export(settings, **kwargs))


def migrate_sync(settings: SettingsLike = None, /, **kwargs: Any) -> MigrationResult:
    """`migrate` for code that is not async (not from inside a running event loop: use `await`)."""
    return asyncio.run(migrate(settings, **kwargs))


def plan_sync(settings: SettingsLike = None, /, **kwargs: Any) -> MigrationResult:
    """`plan` for code that is not async."""
    return asyncio.run(plan(settings, **kwargs))


def verify_sync(settings: SettingsLike = None, /, **kwargs: Any) -> VerifyResult:
    """`verify` for code that is not async."""
    return asyncio.run(verify(settings, **kwargs))


def validate_sync(settings: SettingsLike = None, /, **kwargs: Any) -> ValidationResult:
    """`validate` for code that is not async."""
    return asyncio.run(validate(settings, **kwargs))
