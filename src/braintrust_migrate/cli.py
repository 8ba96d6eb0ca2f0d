"""The `braintrust-migrate` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from braintrust_migrate import __version__
from braintrust_migrate.api import (
    MigrationInterrupted,
    error_line,
    run_checks,
    run_migration,
    run_verify,
)
from braintrust_migrate.archive import FolderSource, open_folder, open_source
from braintrust_migrate.archive.commands import export_summary, run_export, run_export_check
from braintrust_migrate.cli_options import with_settings
from braintrust_migrate.client import ApiError
from braintrust_migrate.config import ConfigError, Settings
from braintrust_migrate.engine.context import Options
from braintrust_migrate.engine.progress import ProgressView
from braintrust_migrate.engine.secrets_file import load_secrets
from braintrust_migrate.entry import INTERRUPTED
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.logs import configure_logging
from braintrust_migrate.redact import scrub
from braintrust_migrate.results import ValidationResult
from braintrust_migrate.sandbox.cli import app as sandbox_app
from braintrust_migrate.textsafe import markup_safe, printable

app = typer.Typer(
    name="braintrust-migrate",
    help="Copy a whole Braintrust organization into another one: every object, reference and row.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain click help: full option names at any width (Rich's boxes truncate them at 80 columns).
    rich_markup_mode=None,
)
app.add_typer(sandbox_app, name="sandbox")

# Piped to a file or a CI log: no hard wraps (tables at their natural width, paths on one line).
stdout = Console(soft_wrap=True) if sys.stdout.isatty() else Console(soft_wrap=True, width=100_000)
log = get_logger(__name__)
T = TypeVar("T")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"braintrust-migrate {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Copy a Braintrust organization into another one."""


STATUS_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def _print_validation(result: ValidationResult) -> None:
    table = Table(title="braintrust-migrate validate", show_lines=False)
    for column in ("side", "check", "result", "details", "fix"):
        table.add_column(column, overflow="fold")
    for check in result.checks:
        style = STATUS_STYLE[check.status]
        table.add_row(
            markup_safe(check.side),
            markup_safe(check.name),
            f"[{style}]{check.status}[/]",
            markup_safe(check.detail),
            markup_safe(check.fix),
        )
    stdout.print(table)
    failed = sum(check.status == "fail" for check in result.checks)
    if failed:
        stdout.print(f"[bold red]{failed} check(s) failed[/]")
    else:
        stdout.print("[green]all checks passed[/]")


@app.command()
@with_settings
def validate(
    settings: Settings,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    write_check: Annotated[
        bool,
        typer.Option(
            "--write-check",
            help="Also prove write access on the destination by creating and deleting a probe project.",
        ),
    ] = False,
) -> None:
    """Check that both orgs are reachable and usable before migrating anything."""

    # Both keys are required: fail on the first missing one before any network call.
    settings.api_key("source")
    settings.api_key("dest")
    result = asyncio.run(run_checks(settings, write_check=write_check))
    failed = [f"{c.side}:{c.name}" for c in result.checks if c.status == "fail"]
    log.info("validation finished", ok=result.ok, checks=len(result.checks), failed=failed)
    if json_output:
        sys.stdout.write(orjson.dumps(dict(result.report), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_validation(result)
    raise typer.Exit(0 if result.ok else 1)


DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Read both sides and report the plan; write nothing.")
]
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite", help="Replace destination objects whose content differs (default: report a conflict)."
    ),
]
Fresh = Annotated[
    bool,
    typer.Option(
        "--fresh",
        help="Start a new run instead of resuming an interrupted one (the id map is kept);"
        " an unusable state file is renamed aside (never deleted) and a new state started.",
    ),
]
MapUsers = Annotated[
    bool,
    typer.Option("--map-users", help="Map users between orgs by email (group members, user ACLs, views)."),
]
InviteUsers = Annotated[
    bool,
    typer.Option(
        "--invite-users", help="With --map-users: invite source users missing from the destination."
    ),
]
SecretsFile = Annotated[
    Path | None,
    typer.Option(
        "--secrets-file",
        help="YAML with values of AI secrets and env vars (the API never returns them).",
        dir_okay=False,
    ),
]
MergeIntoExisting = Annotated[
    bool,
    typer.Option(
        "--merge-into-existing",
        help="Let a renamed project land on a destination project of that name (identity rules"
        " decide, conflicts reported); without it such a collision stops the run.",
    ),
]
SyncDeletes = Annotated[
    bool,
    typer.Option(
        "--sync-deletes",
        help="Delete in the destination the objects and rows this tool copied whose source was"
        " deleted since (never anything it did not create); --dry-run lists them.",
    ),
]
VerifyAfter = Annotated[
    bool, typer.Option("--verify", help="Run `verify` after migrating; exit 0 only at parity.")
]


@app.command()
@with_settings
def migrate(
    settings: Settings,
    dry_run: DryRun = False,
    overwrite: Overwrite = False,
    fresh: Fresh = False,
    map_users: MapUsers = False,
    invite_users: InviteUsers = False,
    secrets_file: SecretsFile = None,
    verify_after: VerifyAfter = False,
    merge_into_existing: MergeIntoExisting = False,
    sync_deletes: SyncDeletes = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="After the copy, keep copying new and changed rows and objects, showing the lag,"
            " until Ctrl-C (or --until-idle); for a cut-over with no downtime.",
        ),
    ] = False,
    until_idle: Annotated[
        float | None,
        typer.Option(
            "--until-idle",
            metavar="SECONDS",
            min=0,
            help="With --follow: stop after this many seconds without a change in the source.",
        ),
    ] = None,
) -> None:
    """Copy every selected object from the source org into the destination org."""
    settings.api_key("source")
    settings.api_key("dest")
    if until_idle is not None and not follow:
        raise ConfigError("--until-idle needs --follow")
    if follow and dry_run:
        raise ConfigError("--follow cannot be combined with --dry-run (a dry run writes nothing to follow)")
    options = Options(
        dry_run=dry_run,
        overwrite=overwrite,
        map_users=map_users,
        invite_users=invite_users,
        fresh=fresh,
        merge_into_existing=merge_into_existing,
        sync_deletes=sync_deletes,
        follow=follow,
        until_idle=until_idle,
    )
    _migrate(settings, options, secrets_file, verify_after)


@app.command("import")
@with_settings
def import_(
    settings: Settings,
    from_dir: Annotated[
        Path,
        typer.Option(
            "--from",
            help="An export folder (`braintrust-migrate export`), or a `bt sync pull` folder.",
            file_okay=False,
        ),
    ],
    into_project: Annotated[
        str | None,
        typer.Option("--into-project", help="For a bt sync pull folder: the destination project's name."),
    ] = None,
    into: Annotated[
        str | None,
        typer.Option(
            "--into", help="For a bt sync pull of an experiment or dataset: its name in the destination."
        ),
    ] = None,
    dry_run: DryRun = False,
    overwrite: Overwrite = False,
    fresh: Fresh = False,
    map_users: MapUsers = False,
    invite_users: InviteUsers = False,
    secrets_file: SecretsFile = None,
    verify_after: VerifyAfter = False,
    merge_into_existing: MergeIntoExisting = False,
    sync_deletes: SyncDeletes = False,
) -> None:
    """Load an export folder into the destination org, as `migrate` would from the live org."""
    settings.api_key("dest")
    source = open_source(from_dir, project=into_project, name=into)  # every file checked first
    options = Options(
        dry_run=dry_run,
        overwrite=overwrite,
        map_users=map_users,
        invite_users=invite_users,
        fresh=fresh,
        merge_into_existing=merge_into_existing,
        sync_deletes=sync_deletes,
    )
    _migrate(settings, options, secrets_file, verify_after, source)


@app.command("export")
@with_settings
def export(
    settings: Settings,
    to: Annotated[
        Path,
        typer.Option("--to", help="The folder to write (created; resumed if it holds one).", file_okay=False),
    ],
    compress: Annotated[
        str, typer.Option("--compress", help="Row files: none, or gzip (jq, DuckDB and zcat read both).")
    ] = "none",
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Discard what the folder holds and export anew.")
    ] = False,
) -> None:
    """Write the source org (or the selection) to a folder: objects, ACLs, users, rows, attachments."""
    settings.api_key("source")
    result = _run(run_export(settings, to, compression=compress, fresh=fresh))
    sys.stdout.write(export_summary(result))
    raise typer.Exit(0 if result.ok else 1)


def _migrate(
    settings: Settings,
    options: Options,
    secrets_file: Path | None,
    verify_after: bool,
    source: FolderSource | None = None,
) -> None:
    if options.invite_users and not options.map_users:
        raise ConfigError("--invite-users needs --map-users: invited users are matched by email")
    secrets = load_secrets(secrets_file)
    try:
        result = _run(run_migration(settings, options, secrets, progress=ProgressView(), source=source))
    except MigrationInterrupted as stopped:
        if stopped.result is not None:
            _print_paths(stopped.result.report_path, stopped.result.summary_path)
        _fail(INTERRUPTED, 130, prefix="")
    sys.stdout.write(result.summary_path.read_text(encoding="utf-8"))
    _print_paths(result.report_path, result.summary_path)
    ok = result.ok
    if verify_after and not options.dry_run:
        parity = _run_verify(
            settings, map_users=options.map_users, folder=result.report_path.parent, source=source
        )
        ok = ok and parity
    raise typer.Exit(0 if ok else 1)


def _run(work: Coroutine[Any, Any, T]) -> T:
    """The command's work to its end; an org that failed (network, permissions) is one line, exit 1."""
    try:
        return asyncio.run(work)
    except ApiError as error:
        log.error("command stopped", error=error.message)
        sys.stderr.write(f"error: {printable(error.message)}\n")
        raise typer.Exit(1) from None


def _print_paths(report: Path, summary: Path, prefix: str = "") -> None:
    """Each path on one line, as plain text (a path is not markup), to copy or grep."""
    for label, path in (("report", report), ("summary", summary), ("html", report.with_suffix(".html"))):
        stdout.print(f"{prefix}{label}: {printable(path)}", markup=False, highlight=False, soft_wrap=True)


def _run_verify(
    settings: Settings,
    *,
    map_users: bool,
    folder: Path | None = None,
    sample: int | None = None,
    source: FolderSource | None = None,
) -> bool:
    result = _run(run_verify(settings, map_users=map_users, folder=folder, sample=sample, source=source))
    sys.stdout.write(result.summary_path.read_text(encoding="utf-8"))
    _print_paths(result.report_path, result.summary_path, prefix="verify ")
    return result.ok


@app.command()
@with_settings
def verify(
    settings: Settings,
    map_users: Annotated[
        bool,
        typer.Option(
            "--map-users", help="Compare user references by email (as `migrate --map-users` wrote them)."
        ),
    ] = False,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            min=1,
            help="Check N random rows of each container in full, plus counts (faster on large data).",
        ),
    ] = None,
    from_dir: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Compare an export folder (instead of the source org) with the destination.",
            file_okay=False,
        ),
    ] = None,
    export_dir: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Compare an export folder (instead of the destination) with its source org.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Compare source and destination: objects, rows, and source ids left in the destination."""
    if from_dir and export_dir:
        raise ConfigError("--from and --export: give one (a folder stands for one side)")
    if export_dir is not None:
        settings.api_key("source")
        _verify_export(settings, open_folder(export_dir))
    source = open_folder(from_dir) if from_dir else None
    if source is None:
        settings.api_key("source")
    settings.api_key("dest")
    ok = _run_verify(settings, map_users=map_users, sample=sample, source=source)
    raise typer.Exit(0 if ok else 1)


def _verify_export(settings: Settings, folder: FolderSource) -> None:
    result = _run(run_export_check(settings, folder))
    sys.stdout.write(result.summary)
    stdout.print(f"verify report: {printable(result.path)}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def demo(
    profile: Annotated[
        str, typer.Option("--profile", help="Size of the seeded source org: small, medium or large.")
    ] = "small",
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the generated content (same seed, same org).")
    ] = 0,
    rows: Annotated[
        int | None,
        typer.Option(
            "--rows",
            min=0,
            help="Event rows to seed (logs, experiment and dataset rows); default per profile.",
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", help="Folder for the demo's state and reports.", file_okay=False)
    ] = Path("braintrust-migrate-demo"),
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the sandbox running afterwards and print its URL and keys.")
    ] = False,
) -> None:
    """Show everything on a local sandbox: seed a source org, then validate, migrate and verify."""
    from braintrust_migrate.demo import DemoOptions, run_demo
    from braintrust_migrate.sandbox.seed.plan import PROFILES

    if profile not in PROFILES:
        raise ConfigError(f"--profile {profile!r}: allowed: {', '.join(PROFILES)}")
    configure_logging("WARNING", "text")
    options = DemoOptions(profile=profile, seed=seed, rows=rows, output=output, keep=keep)
    raise typer.Exit(run_demo(options, stdout))


def _fail(message: str, code: int, prefix: str = "error: ") -> None:
    sys.stderr.write(f"{prefix}{printable(scrub(message))}\n")
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: user mistakes become one line and exit code 2, never a traceback."""
    try:
        return app(args=argv, standalone_mode=True)
    except ConfigError as error:
        _fail(error_line(error), 2)
    except KeyboardInterrupt:
        _fail(INTERRUPTED, 130, prefix="")
