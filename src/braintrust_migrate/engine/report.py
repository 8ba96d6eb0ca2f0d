"""Outcomes of a run: the JSON report, the human summary and the follow-up list."""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import orjson

from braintrust_migrate.engine.private import FILE_MODE, make_dirs
from braintrust_migrate.engine.refs import USER_KIND
from braintrust_migrate.textsafe import printable

Action = Literal["created", "updated", "unchanged", "conflict", "skipped", "failed", "deleted"]
ACTIONS: tuple[Action, ...] = ("created", "updated", "unchanged", "conflict", "skipped", "failed")
# Only --sync-deletes deletes: its column shows only when a run deleted something.
DELETED: Action = "deleted"

# Reasons that ask the user to do something by hand, with what to do.
FOLLOW_UPS = {
    "secret_needs_value": "set the value in the destination (or pass --secrets-file and re-run)",
    "env_var_needs_value": "set the value in the destination (or pass --secrets-file and re-run)",
    "code_bundle_not_migratable": "re-push the bundled code with `braintrust push` against the destination org",
    "user_not_mapped": "invite the user to the destination org (or re-run with --map-users --invite-users)",
    "unresolved_reference": "migrate the referenced object too (check --resources / --projects) and re-run",
    "source_not_readable": "grant the source key's user read access to these (or leave them out with --resources), then re-run",
    "destination_not_readable": "grant the destination key's user read access to these, then re-run",
}
# With --map-users already given, only inviting (or adding the user by hand) is left to do.
USER_TODO_MAPPED = "invite the user to the destination org (or re-run with --invite-users), then re-run"


@dataclass
class ReportFiles:
    """A written report: its data and where its JSON and text forms are."""

    report: dict[str, Any]
    report_path: Path
    summary_path: Path


@dataclass
class Unresolved:
    field: str
    target_type: str | None
    target_id: str


@dataclass
class Outcome:
    type: str
    kind: str
    name: str
    source_id: str
    action: Action
    project: str | None = None
    dest_id: str | None = None
    reason: str | None = None
    duration_ms: float = 0.0
    error: dict[str, Any] | None = None
    unresolved: list[Unresolved] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    differing_fields: list[str] = field(default_factory=list)
    # References left out for now, patched in once their targets exist (cycles, other projects).
    pending: list[str] = field(default_factory=list)
    dest_name: str | None = None  # a renamed project's name in the destination

    def to_dict(self) -> dict[str, Any]:
        """Its set fields; containers copied one level (dataclasses.asdict copies deep, and was a
        fifth of the object phase's CPU: reports and the state take every outcome)."""
        data: dict[str, Any] = {}
        for name in _OUTCOME_FIELDS:
            value = getattr(self, name)
            if value is None or value == [] or value == {}:
                continue
            if isinstance(value, list):
                value = [asdict(v) if isinstance(v, Unresolved) else v for v in value]
            elif isinstance(value, dict):
                value = dict(value)
            data[name] = value
        return data


_OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))


def totals(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome in outcomes:
        table[outcome.type][outcome.action] += 1
    shown = (*ACTIONS, DELETED)
    return {name: {a: counts[a] for a in shown if counts[a]} for name, counts in sorted(table.items())}


def follow_ups(
    outcomes: list[Outcome], unmapped_users: list[str], *, users_mapped: bool = False
) -> list[dict[str, Any]]:
    todos = {**FOLLOW_UPS, "user_not_mapped": USER_TODO_MAPPED} if users_mapped else FOLLOW_UPS
    items: list[dict[str, Any]] = []
    for outcome in outcomes:
        reasons = {outcome.reason} if outcome.reason in FOLLOW_UPS else set()
        if any(u.target_type != USER_KIND for u in outcome.unresolved):
            reasons.add("unresolved_reference")
        if any(u.target_type == USER_KIND for u in outcome.unresolved):
            reasons.add("user_not_mapped")
        for reason in sorted(r for r in reasons if r):
            item: dict[str, Any] = {
                "reason": reason,
                "type": outcome.type,
                "project": outcome.project,
                "name": outcome.name,
                "todo": todos[reason],
            }
            if reason in ("unresolved_reference", "user_not_mapped") and outcome.unresolved:
                users = reason == "user_not_mapped"
                item["fields"] = [
                    asdict(u) for u in outcome.unresolved if (u.target_type == USER_KIND) == users
                ]
            items.append(item)
    for email in unmapped_users:
        items.append(
            {
                "reason": "user_not_mapped",
                "type": USER_KIND,
                "name": email,
                "todo": todos["user_not_mapped"],
            }
        )
    return items


def _todo_name(item: dict[str, Any], with_type: bool) -> str:
    if item.get("type") == USER_KIND:
        return str(item["name"])
    where = f"{item['project']}/" if item.get("project") else ""
    return f"{item['type']} '{where}{item['name']}'" if with_type else f"'{where}{item['name']}'"


def todo_lines(items: list[dict[str, Any]], examples: int = 3) -> list[str]:
    """One line per kind of to-do, most common first (ties by name): count, first names, the fix."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[item["reason"]].append(item)
    lines = []
    for reason, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        types = {item.get("type") for item in group}
        one_type = len(types) == 1 and USER_KIND not in types
        names = sorted({_todo_name(item, with_type=not one_type) for item in group})
        shown = ", ".join(names[:examples])
        if len(names) > examples:
            shown += f" and {len(names) - examples} more"
        if one_type:
            shown = f"{group[0]['type']} {shown}"
        lines.append(f"{reason} ({len(group)}): {shown} — fix: {group[0]['todo']}")
    return lines


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` at once, as a 0600 file whatever the umask (reports name every object)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def build_report(
    meta: dict[str, Any],
    outcomes: list[Outcome],
    unmapped_users: list[str],
    streams: dict[str, Any] | None = None,
    *,
    users_mapped: bool = False,
) -> dict[str, Any]:
    streams = streams or {"totals": {}, "containers": []}
    # An interrupted stream is not a failure: the next invocation continues it.
    failed_streams = [c for c in streams["containers"] if c["status"] == "failed"]
    return {
        **meta,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "totals": totals(outcomes),
        "failed": sum(o.action == "failed" for o in outcomes) + len(failed_streams),
        "events": streams,
        "objects": [o.to_dict() for o in outcomes],
        "errors": [o.to_dict() for o in outcomes if o.action == "failed"],
        "follow_ups": follow_ups(outcomes, unmapped_users, users_mapped=users_mapped),
    }


def summary_text(report: dict[str, Any], examples: int = 3) -> str:
    lines = [
        f"braintrust-migrate {'dry run' if report.get('dry_run') else 'migration'} {report.get('run_id', '')}",
        f"source: {report.get('source_org')}  ->  destination: {report.get('dest_org')}",
    ]
    if report.get("interrupted"):
        lines.append("interrupted: re-run the same command to resume")
    if report.get("resumed"):
        lines.append(f"resumed: counts cover all {report.get('invocations')} invocations of this run")
    columns = ACTIONS
    if any(DELETED in counts for counts in report["totals"].values()):
        columns = (*ACTIONS, DELETED)
    lines += [
        "",
        f"{'type':<22}" + "".join(f"{a:>11}" for a in columns),
    ]
    for name, counts in report["totals"].items():
        lines.append(f"{name:<22}" + "".join(f"{counts.get(a, 0):>11}" for a in columns))
    by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in report["objects"]:
        if obj["action"] in ("skipped", "conflict", "failed"):
            by_reason[f"{obj['action']}: {obj.get('reason') or 'error'}"].append(obj)
    if by_reason:
        lines += ["", "Skipped, conflicting and failed objects, by reason:"]
        for reason, objs in sorted(by_reason.items()):
            lines.append(f"  {reason} ({len(objs)})")
            for obj in objs[:examples]:
                where = f"{obj.get('project')}/" if obj.get("project") else ""
                detail = obj.get("error", {}).get("message") if obj.get("error") else None
                lines.append(f"    - {obj['type']} {where}{obj['name']}" + (f": {detail}" if detail else ""))
    events = report.get("events") or {}
    plan = (events.get("plan") or {}).get("totals")
    if plan:  # a dry run: what the real run would copy
        lines += [
            "",
            f"{'event rows (plan)':<22}{'containers':>11}{'rows':>11}{'to copy':>11}{'copied':>11}{'~MiB':>9}",
        ]
        for name, row in plan.items():
            lines.append(
                f"{name:<22}{row['containers']:>11}{row['rows_total']:>11}{row['rows_to_copy']:>11}"
                f"{row['already_copied']:>11}{row['bytes_estimate'] / 1048576:>9.1f}"
            )
    if events.get("totals"):
        lines += [
            "",
            f"{'event rows':<22}{'containers':>11}{'read':>11}{'written':>11}{'failed':>11}{'MiB':>9}",
        ]
        for name, row in events["totals"].items():
            lines.append(
                f"{name:<22}{row['containers']:>11}{row['rows_read']:>11}{row['rows_written']:>11}"
                f"{row['rows_failed']:>11}{row['bytes'] / 1048576:>9.1f}"
            )
        for container in events["containers"]:
            if container["status"] == "interrupted":
                lines.append(f"  interrupted: {container['type']} {container['name']} (resumes on re-run)")
            elif container["status"] != "done":
                lines.append(
                    f"  failed: {container['type']} {container['name']}: {container.get('error') or ''}"
                )
                for row in container["failed_rows"][:examples]:
                    lines.append(f"    - row {row['row_id']} ({row['size']} bytes): {row['reason']}")
            for note in container["notes"][:examples]:
                lines.append(f"  note: {container['type']} {container['name']}: {note}")
    renamed = [o for o in report["objects"] if o.get("dest_name")]
    if renamed:  # --project-map/--project-prefix: under which names the projects land
        lines += ["", f"renamed projects ({len(renamed)}):"]
        lines += [f"  {o['name']} -> {o['dest_name']}" for o in renamed[: max(examples, 20)]]
        if len(renamed) > max(examples, 20):
            lines.append(f"  … {len(renamed) - max(examples, 20)} more in migration_report.json")
    if report.get("follow"):  # migrate --follow
        from braintrust_migrate.engine.follow import follow_line  # follow imports this module

        lines += ["", follow_line(report["follow"])]
    lines += delete_lines(report.get("deletes"), examples)
    if report["follow_ups"]:
        lines += ["", "To do by hand (the full list is in migration_report.json, follow_ups):"]
        lines += [f"  {line}" for line in todo_lines(report["follow_ups"], examples)]
    lines += ["", f"failed: {report['failed']}"]
    return "\n".join(printable(line) for line in lines) + "\n"


def delete_lines(deletes: dict[str, Any] | None, examples: int = 3) -> list[str]:
    """--sync-deletes: what was (a dry run: would be) deleted, and what was kept and why."""
    if not deletes:
        return []
    verb = "would delete" if deletes.get("dry_run") else "deleted"
    objects = deletes.get("objects_deleted") or []
    lines = [
        "",
        f"Mirror deletes (--sync-deletes): {verb} {len(objects)} objects, {deletes['rows_deleted']} rows",
    ]
    for obj in objects:
        where = f"{obj['project']}/" if obj.get("project") else ""
        lines.append(f"  {verb}: {obj['type']} {where}{obj['name']} ({obj.get('dest_id')})")
    for row in deletes.get("rows") or []:
        lines.append(f"  {verb}: {row['rows_deleted']} rows of {row['type']} {row['project']}/{row['name']}")
    for kept in (deletes.get("kept") or [])[: examples * 10]:
        lines.append(f"  kept: {kept['type']} {kept['name']}: {kept['reason']}")
    lines += [f"  note: {note}" for note in deletes.get("notes") or []]
    return lines


def html_path(json_path: Path) -> Path:
    """The HTML page written beside a JSON report (migration_report.json, verify_report.json)."""
    return json_path.with_suffix(".html")


def write_report(folder: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """The JSON report, the text summary and, beside them, the HTML page (see html_path)."""
    from braintrust_migrate.engine.report_html import render_html  # it imports this module

    make_dirs(folder)
    json_path, text_path = folder / "migration_report.json", folder / "migration_summary.txt"
    write_atomic(json_path, orjson.dumps(report, option=orjson.OPT_INDENT_2))
    write_atomic(text_path, summary_text(report).encode())
    write_atomic(html_path(json_path), render_html(report).encode())
    return json_path, text_path
