"""The log lines a person watches: phase starts and one line per object, as the product brief
shows them (``✅ Created AI secret: 'OpenAI API Key' (src-123 → dest-456)``).

Every line also carries its facts as fields (action, type, name, source_id, dest_id, reason):
the JSON format shows them, the text format shows only the sentence (logs.NARRATED)."""

from __future__ import annotations

from typing import Any

from braintrust_migrate.engine.report import Outcome
from braintrust_migrate.engine.resources import BY_KIND, PROJECT_TYPE, STREAMS
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.textsafe import printable

log = get_logger("braintrust_migrate")

MARKS = {
    "created": "✅",
    "updated": "🔄",
    "unchanged": "➖",
    # Emoji with a variation selector render one column wide in many terminals: two spaces keep
    # the text aligned (the brief's "⏭️  Skipped").
    "skipped": "⏭️ ",
    "conflict": "⚠️ ",
    "failed": "❌",
    "deleted": "🗑️ ",
}
VERBS = {
    "created": "Created",
    "updated": "Updated",
    "unchanged": "Unchanged",
    "skipped": "Skipped",
    "conflict": "Conflict on",
    "failed": "Failed",
    "deleted": "Deleted",
}
DRY_VERBS = {"created": "Would create", "updated": "Would update", "deleted": "Would delete"}
REASONS = {
    "exists_with_different_content": "exists with different content; --overwrite replaces it",
    "changed_in_destination": "changed in the destination since the last run; --overwrite replaces it",
    "project_not_migrated": "its project was not migrated",
    "object_not_migrated": "the object it belongs to was not migrated",
    "object_type_not_migratable": "this object type cannot be migrated",
    "group_not_migrated": "its group was not migrated",
    "role_not_migrated": "its role was not migrated",
    "pinned_version_unknown": "the pinned version is unknown",
    "user_not_mapped": "its user has no account in the destination org",
    "user_mapping_disabled": "user mapping is off (see --map-users)",
    "secret_needs_value": "the value must be set by hand (or with --secrets-file)",
    "env_var_needs_value": "the value must be set by hand (or with --secrets-file)",
    "code_bundle_not_migratable": "bundled code must be re-pushed with `braintrust push`",
    "unresolved_reference": "a reference could not be resolved",
    "source_not_readable": "the source key may not list these (403)",
    "destination_not_readable": "the destination key may not list these (403): nothing was written",
    "already_exists": "already exists",
}
LEVELS = {"unchanged": "debug", "conflict": "warning", "failed": "error"}


def type_name(kind: str) -> str:
    rt = BY_KIND.get(kind)
    return rt.label if rt is not None and rt.label else kind.replace("_", " ")


def reason_text(reason: str | None) -> str:
    return REASONS.get(reason or "", (reason or "").replace("_", " "))


def object_line(outcome: Outcome, dry_run: bool = False) -> str:
    """The sentence for one object, names shown inert (textsafe.printable)."""
    action = outcome.action
    verb = DRY_VERBS.get(action, VERBS[action]) if dry_run else VERBS[action]
    in_project = outcome.project and outcome.kind != PROJECT_TYPE.kind and outcome.project != outcome.name
    where = f"{printable(outcome.project)}/" if in_project else ""
    line = f"{MARKS[action]} {verb} {type_name(outcome.kind)}: '{where}{printable(outcome.name)}'"
    # A planned creation has no destination id yet (only a placeholder).
    real_dest = outcome.dest_id and not outcome.dest_id.startswith("dry-run:")
    ids = f"{outcome.source_id} → {outcome.dest_id}" if real_dest else None
    if action == "failed":
        message = (outcome.error or {}).get("message") or reason_text(outcome.reason) or "error"
        return f"{line}: {printable(message)}"
    why = reason_text(outcome.reason) if outcome.reason else None
    if action == "skipped":
        return f"{line} ({why or 'skipped'})"
    if action == "conflict" and outcome.differing_fields:
        why = f"{why or 'differs'}; differing: {', '.join(outcome.differing_fields[:5])}"
    parts = [p for p in (ids, why) if p]
    return f"{line} ({'; '.join(parts)})" if parts else line


def facts(outcome: Outcome, dry_run: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "action": outcome.action,
        "type": outcome.kind,
        "name": outcome.name,
        "source_id": outcome.source_id,
        "dest_id": outcome.dest_id,
        "project": outcome.project,
        "reason": outcome.reason,
        "dry_run": dry_run or None,
    }
    if outcome.error:
        data["error"] = outcome.error.get("message")
    return {key: value for key, value in data.items() if value is not None}


def object_outcome(outcome: Outcome, dry_run: bool = False) -> None:
    """One line per object: created/updated/skipped at INFO, conflicts WARNING, failures ERROR,
    unchanged at DEBUG."""
    level = LEVELS.get(outcome.action, "info")
    getattr(log, level)(object_line(outcome, dry_run), narrated=True, **facts(outcome, dry_run))


def org_phase_started() -> None:
    log.info("Starting organization-scoped resource migration", narrated=True, phase="organization")


def project_started(name: str | None, index: int, total: int) -> None:
    log.info(
        f"Starting project '{printable(name)}' ({index}/{total})",
        narrated=True,
        phase=PROJECT_TYPE.kind,
        project=name,
        index=index,
        total=total,
    )


def phase_started(phase: str) -> None:
    log.info(f"Starting {phase}", narrated=True, phase=phase)


class ProjectStarts:
    """Numbers projects in the order they start: "Starting project 'X' (3/12)"."""

    def __init__(self, total: int) -> None:
        self.total, self.started = total, 0

    def __call__(self, name: str | None) -> None:
        self.started += 1
        project_started(name, self.started, self.total)


def stream_finished(kind: str, name: str, rows: int, failed: int, seconds: float) -> None:
    label = STREAMS[kind].label if kind in STREAMS else kind
    line = f"📦 Copied {rows:,} {label} rows: '{printable(name)}'"
    line += f" ({failed:,} failed, {seconds:.1f} s)" if failed else f" ({seconds:.1f} s)"
    level = "warning" if failed else "info"
    getattr(log, level)(
        line,
        narrated=True,
        action="streamed",
        container=kind,
        name=name,
        rows=rows,
        failed=failed,
        seconds=round(seconds, 2),
    )
