"""What the public API returns: frozen objects read from the reports the engine writes.

Every object is built from the report dict (the same data as migration_report.json and
verify_report.json, kept whole in `.report`): there is no second source of truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class Failure:
    """An object the migration could not write: its type, name, why, and the error message."""

    type: str
    name: str
    reason: str | None
    error: str | None
    project: str | None = None
    source_id: str | None = None

    @classmethod
    def from_report(cls, obj: Mapping[str, Any]) -> Failure:
        error = obj.get("error") or {}
        return cls(
            type=obj["type"],
            name=obj.get("name", ""),
            reason=obj.get("reason"),
            error=error.get("message") if isinstance(error, Mapping) else str(error),
            project=obj.get("project"),
            source_id=obj.get("source_id"),
        )


@dataclass(frozen=True)
class Todo:
    """Something left to do by hand (a secret's value, a user to invite…) and how to do it."""

    reason: str
    type: str
    name: str
    fix: str
    project: str | None = None

    @classmethod
    def from_report(cls, item: Mapping[str, Any]) -> Todo:
        return cls(
            reason=item["reason"],
            type=item["type"],
            name=str(item["name"]),
            fix=item["todo"],
            project=item.get("project"),
        )


@dataclass(frozen=True)
class ContainerRows:
    """One container's event rows (project logs, an experiment, a dataset).

    A migration fills `status` and the row counts; a dry run (`plan`) fills `rows_total` and
    `rows_to_copy` instead. `raw` is the report's row for this container.
    """

    type: str
    name: str
    project: str | None
    status: str
    rows_read: int = 0
    rows_written: int = 0
    rows_failed: int = 0
    bytes: int = 0
    rows_total: int | None = None
    rows_to_copy: int | None = None
    error: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_report(cls, row: Mapping[str, Any], *, planned: bool = False) -> ContainerRows:
        return cls(
            type=row["type"],
            name=row.get("name", ""),
            project=row.get("project"),
            status="planned" if planned else row.get("status", ""),
            rows_read=row.get("rows_read") or 0,
            rows_written=row.get("rows_written") or 0,
            rows_failed=row.get("rows_failed") or 0,
            bytes=row.get("bytes") or 0,
            rows_total=row.get("rows_total"),
            rows_to_copy=row.get("rows_to_copy"),
            error=row.get("error"),
            raw=row,
        )


@dataclass(frozen=True)
class MigrationResult:
    """The outcome of `migrate` or `plan` (a dry run: `dry_run` is True and nothing was written).

    `counts` maps each resource type to its actions (`created`, `updated`, `unchanged`,
    `conflict`, `skipped`, `failed`) and how many objects had each. `ok` is True when nothing
    failed. `report` is the whole migration_report.json as a dict.
    """

    ok: bool
    dry_run: bool
    run_id: str
    source_org: str | None
    dest_org: str | None
    counts: Mapping[str, Mapping[str, int]]
    failures: tuple[Failure, ...]
    todos: tuple[Todo, ...]
    containers: tuple[ContainerRows, ...]
    interrupted: bool
    report_path: Path
    summary_path: Path
    report: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_report(cls, report: Mapping[str, Any], report_path: Path, summary_path: Path) -> MigrationResult:
        events = report.get("events") or {}
        plan = events.get("plan")
        rows = [ContainerRows.from_report(c) for c in events.get("containers", [])]
        if plan:
            rows += [ContainerRows.from_report(c, planned=True) for c in plan.get("containers", [])]
        failed_streams = [
            Failure(c.type, c.name, "rows_failed", c.error, c.project) for c in rows if c.status == "failed"
        ]
        return cls(
            ok=report["failed"] == 0,
            dry_run=bool(report.get("dry_run")),
            run_id=report.get("run_id", ""),
            source_org=report.get("source_org"),
            dest_org=report.get("dest_org"),
            counts={name: dict(actions) for name, actions in report["totals"].items()},
            failures=tuple(Failure.from_report(o) for o in report["errors"]) + tuple(failed_streams),
            todos=tuple(Todo.from_report(item) for item in report["follow_ups"]),
            containers=tuple(rows),
            interrupted=bool(report.get("interrupted")),
            report_path=report_path,
            summary_path=summary_path,
            report=report,
        )

    def count(self, type_name: str, action: str) -> int:
        """How many objects of `type_name` ended with `action` (0 when none)."""
        return self.counts.get(type_name, {}).get(action, 0)


@dataclass(frozen=True)
class TypeParity:
    """Verify's verdict on one resource type: how many source objects matched, and what did not."""

    type: str
    ok: bool
    source: int
    matched: int
    missing: int
    extra: int
    differing: int
    expected: int

    @classmethod
    def from_report(cls, row: Mapping[str, Any]) -> TypeParity:
        names = ("source", "matched", "missing", "extra", "differing", "expected")
        return cls(type=row["type"], ok=bool(row["ok"]), **{name: int(row.get(name) or 0) for name in names})


@dataclass(frozen=True)
class ContainerParity:
    """Verify's verdict on one container's rows."""

    container: str
    name: str
    ok: bool
    source_rows: int | None
    dest_rows: int | None
    missing: int
    extra: int
    differing: int

    @classmethod
    def from_report(cls, row: Mapping[str, Any]) -> ContainerParity:
        return cls(
            container=row["container"],
            name=row.get("name", ""),
            ok=bool(row["ok"]),
            source_rows=row.get("source_rows"),
            dest_rows=row.get("dest_rows"),
            missing=int(row.get("missing") or 0),
            extra=int(row.get("extra") or 0),
            differing=int(row.get("differing") or 0),
        )


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of `verify`: `ok` is True at parity (expected differences allowed).

    `report` is the whole verify_report.json as a dict.
    """

    ok: bool
    source_org: str | None
    dest_org: str | None
    types: tuple[TypeParity, ...]
    containers: tuple[ContainerParity, ...]
    source_id_leaks: int
    expected_differences: Mapping[str, int]
    report_path: Path
    summary_path: Path
    report: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_report(cls, report: Mapping[str, Any], report_path: Path, summary_path: Path) -> VerifyResult:
        return cls(
            ok=bool(report["ok"]),
            source_org=report.get("source_org"),
            dest_org=report.get("dest_org"),
            types=tuple(TypeParity.from_report(row) for row in report["objects"]),
            containers=tuple(ContainerParity.from_report(row) for row in report["events"]),
            source_id_leaks=int(report.get("source_id_leak_count") or 0),
            expected_differences=dict(report.get("expected_difference_counts") or {}),
            report_path=report_path,
            summary_path=summary_path,
            report=report,
        )


@dataclass(frozen=True)
class Check:
    """One check of `validate`: which side, what, pass/fail/warn/skip, details and the fix."""

    side: str
    name: str
    status: Literal["pass", "fail", "warn", "skip"]
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of `validate`: `ok` is True when no check failed. `report` is its JSON as a dict."""

    ok: bool
    checks: tuple[Check, ...]
    orgs: Mapping[str, Mapping[str, str | None]]
    report: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> ValidationResult:
        return cls(
            ok=bool(report["ok"]),
            checks=tuple(Check(**check) for check in report["checks"]),
            orgs={side: dict(info) for side, info in report["orgs"].items()},
            report=report,
        )


@dataclass(frozen=True)
class Event:
    """A progress event for `on_event`: one object's outcome, or a batch of rows copied.

    `kind` is "object" (then `type`, `name`, `action`, `project`, `reason` are set) or "rows"
    (then `type` is the container kind, `name` its name, `rows` and `bytes` the batch's size).
    `data` holds every field the engine gave.
    """

    kind: Literal["object", "rows"]
    type: str
    name: str
    project: str | None = None
    action: str | None = None
    reason: str | None = None
    rows: int = 0
    bytes: int = 0
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
