"""The event stage of a run: dataset rows first (experiments and snapshots pin their
versions), then experiment rows and project logs, many containers at once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from braintrust_migrate import btql
from braintrust_migrate.client import ApiClient, ApiError, NotFoundError
from braintrust_migrate.config import Settings
from braintrust_migrate.engine import narrate
from braintrust_migrate.engine.context import RunContext, is_placeholder
from braintrust_migrate.engine.events.attachments import Attachments
from braintrust_migrate.engine.events.reader import BtqlReader, Window
from braintrust_migrate.engine.events.state import EventState
from braintrust_migrate.engine.events.stream import ByteBudget, Stream, StreamEnv, StreamOutcome, StreamSpec
from braintrust_migrate.engine.events.versions import PinLog

log = structlog.get_logger(__name__)

# Selection name -> (container kind, kind of the object that is the container)
STREAMED_TYPES = {
    "datasets": ("dataset", "dataset"),
    "experiments": ("experiment", "experiment"),
    "logs": ("project_logs", "project"),
}
PAYLOAD_HEADROOM = 0.9
ROW_TYPES = {"project_logs": "logs", "experiment": "experiment_rows", "dataset": "dataset_rows"}
# Rows read to estimate a dry run's bytes to copy.
PLAN_SAMPLE_ROWS = 50


async def destination_payload_limit(dest: ApiClient) -> int | None:
    """The destination's own request cap, when its /version announces one."""
    try:
        info = await dest.get_json("/version")
    except ApiError:
        return None
    value = info.get("logs3_payload_max_bytes") if isinstance(info, dict) else None
    return (
        int(int(value) * PAYLOAD_HEADROOM) if isinstance(value, int | str) and str(value).isdigit() else None
    )


def pinned_versions(ctx: RunContext) -> dict[str, set[str]]:
    """Source dataset id -> the dataset versions experiments and snapshots point at."""
    pins: dict[str, set[str]] = {}
    for experiment in ctx.src_inv.of("experiment"):
        if experiment.get("dataset_id") and experiment.get("dataset_version"):
            pins.setdefault(experiment["dataset_id"], set()).add(str(experiment["dataset_version"]))
    for snapshot in ctx.src_inv.of("dataset_snapshot"):
        if snapshot.get("dataset_id") and snapshot.get("xact_id"):
            pins.setdefault(snapshot["dataset_id"], set()).add(str(snapshot["xact_id"]))
    return pins


class EventStage:
    def __init__(
        self,
        ctx: RunContext,
        settings: Settings,
        selected: set[str],
        on_rows: Callable[[StreamSpec, int, int], None],
        on_totals: Callable[[str, int], None] | None,
    ) -> None:
        self.ctx, self.settings, self.selected = ctx, settings, selected
        self.on_rows, self.on_totals = on_rows, on_totals
        self.events = EventState(ctx.state)
        self.budget = ByteBudget(settings.migration_max_bytes_in_flight)
        self.pins = pinned_versions(ctx)
        self._expected: dict[str, int | None] = {}

    def specs(self, container: str, *, planned: bool = False) -> list[StreamSpec]:
        """The containers of one kind whose rows this run copies (`planned`: also those a dry run
        would create first)."""
        name = next(n for n, (c, _) in STREAMED_TYPES.items() if c == container)
        if name not in self.selected:
            return []
        kind = STREAMED_TYPES[name][1]
        specs = []
        for node in self.ctx.nodes.values():
            if node.rt.kind != kind:
                continue
            dest_id = self.ctx.peek(kind, node.src["id"])
            if not dest_id or (is_placeholder(dest_id) and not planned):
                continue
            pins = sorted(int(v) for v in self.pins.get(node.src["id"], ()) if v.isdigit())
            project = node.project if kind != "project" else node.name
            specs.append(StreamSpec(container, node.src["id"], dest_id, node.name, project, pins))
        return specs

    async def env(self) -> StreamEnv:
        s, ctx = self.settings, self.ctx
        limit = await destination_payload_limit(ctx.dest)
        attachments = Attachments(
            ctx.source,
            ctx.dest,
            self.events,
            ctx.source_org["id"],
            ctx.dest_org["id"],
            s.migration_attachment_max_bytes,
        )
        return StreamEnv(
            source=ctx.source,
            dest=ctx.dest,
            events=self.events,
            budget=self.budget,
            resolve=ctx.peek,
            page_size=s.migration_event_page_size,
            max_rows=s.migration_insert_batch_rows,
            max_bytes=min(s.migration_insert_max_bytes, limit) if limit else s.migration_insert_max_bytes,
            window=Window(s.migration_created_after, s.migration_created_before),
            fresh=ctx.options.fresh,
            attachments=attachments,
            copy_attachments=s.migration_copy_attachments,
            on_rows=self.on_rows,
        )

    async def run_streams(self, specs: list[StreamSpec]) -> list[StreamOutcome]:
        if not specs:
            return []
        env = await self.env()
        # Counting only feeds the live progress (ETA): beside the copy, and only when shown.
        counting = asyncio.create_task(self._count(env, specs) if self.on_totals else asyncio.sleep(0))
        slots = asyncio.Semaphore(self.settings.migration_max_concurrent_resources)

        async def one(spec: StreamSpec) -> StreamOutcome:
            async with slots:
                outcome = await Stream(env, spec).run()
            narrate.stream_finished(
                spec.kind, spec.name, outcome.rows_written, outcome.rows_failed, outcome.duration_s
            )
            return outcome

        outcomes = list(await asyncio.gather(*(one(spec) for spec in specs)))
        await counting
        for outcome in outcomes:
            outcome.expected_rows = self._expected.get(outcome.spec.src_id)
        return outcomes

    async def _count(self, env: StreamEnv, specs: list[StreamSpec]) -> None:
        """Rows to expect per container, for progress (ETA) and the report."""
        slots = asyncio.Semaphore(self.settings.migration_max_concurrent_resources)

        async def count(spec: StreamSpec) -> tuple[str, int | None]:
            async with slots:
                try:
                    reader = BtqlReader(env.source, spec.kind, spec.src_id, env.page_size, env.window)
                    return spec.src_id, await reader.count()
                except ApiError:
                    return spec.src_id, None

        self._expected = dict(await asyncio.gather(*(count(spec) for spec in specs)))
        by_kind: dict[str, int] = {}
        for spec in specs:
            by_kind[spec.kind] = by_kind.get(spec.kind, 0) + (self._expected.get(spec.src_id) or 0)
        for kind, total in by_kind.items():
            if self.on_totals:
                self.on_totals(kind, total)

    def record_pins(self) -> None:
        """Make pinned dataset versions translatable by the object engine."""
        pin_log = PinLog(self.events.db)
        for dataset, versions in self.pins.items():
            dest_dataset = self.ctx.peek("dataset", dataset)
            if not dest_dataset:
                continue
            for version in versions:
                # Only a pin written as its own version translates; any other is dropped with a note.
                pin = str(int(version)) if version.isdigit() else version
                dest = pin_log.dest_xact(dataset, dest_dataset, pin)
                if dest:
                    self.ctx.state.record_xact("dataset", dataset, version, dest)


class RowPlanner:
    """A dry run's row plan per container: rows in the window, how many an earlier run already
    copied (its checkpoint), and an estimate of the bytes left. Reads only: the source, and the
    checkpoints in the state."""

    def __init__(self, ctx: RunContext, settings: Settings) -> None:
        self.ctx, self.settings = ctx, settings
        self.window = Window(settings.migration_created_after, settings.migration_created_before)

    async def plan(self, specs: list[StreamSpec]) -> list[dict[str, Any]]:
        slots = asyncio.Semaphore(self.settings.migration_max_concurrent_resources)

        async def one(spec: StreamSpec) -> dict[str, Any]:
            async with slots:
                return await self._one(spec)

        return list(await asyncio.gather(*(one(spec) for spec in specs)))

    async def _one(self, spec: StreamSpec) -> dict[str, Any]:
        row: dict[str, Any] = {
            "type": ROW_TYPES[spec.kind],
            "container": spec.kind,
            "name": spec.name,
            "project": spec.project,
            "source_id": spec.src_id,
            "dest_id": None if is_placeholder(spec.dest_id) else spec.dest_id,
        }
        checkpoint, copied_before = self._checkpoint(spec)
        try:
            total = await self._count(spec, None)
            left = total if checkpoint is None else await self._count(spec, checkpoint)
            sample = await self._sample_bytes(spec, checkpoint) if left else 0
        except ApiError as error:
            return {**row, "rows_total": None, "rows_to_copy": None, "error": error.message}
        if total is None or left is None:
            return {**row, "rows_total": None, "rows_to_copy": None, "error": "the source has no BTQL"}
        if checkpoint is None and copied_before:  # a /fetch resume point: only its count is known
            left = max(0, total - copied_before)
        return {
            **row,
            "rows_total": total,
            "rows_to_copy": left,
            "already_copied": total - left,
            "bytes_estimate": sample * left,
        }

    def _checkpoint(self, spec: StreamSpec) -> tuple[str | None, int]:
        """The resume point an earlier run saved for this stream into the same destination container."""
        if self.ctx.options.fresh or is_placeholder(spec.dest_id):
            return None, 0
        try:
            found = self.ctx.state._db.execute(
                "SELECT checkpoint, cursor, rows_written FROM streams WHERE stream = ? AND dest_id = ?",
                (f"{spec.kind}:{spec.src_id}", spec.dest_id),
            ).fetchone()
        except sqlite3.OperationalError:  # no real run has copied rows yet: no table
            return None, 0
        if found is None:
            return None, 0
        return found[0], int(found[2] or 0) if found[1] else 0

    async def _count(self, spec: StreamSpec, after_key: str | None) -> int | None:
        query = btql.Query(spec.kind, [spec.src_id], measures=["count(1) as n"]).where(self.window.btql())
        if after_key:
            query.where(btql.cmp("_pagination_key", ">", after_key))
        try:
            data = await self.ctx.source.post_json("/btql", query.body())
        except NotFoundError:
            return None
        rows = data.get("data") or []
        return int(rows[0].get("n", 0)) if rows else 0

    async def _sample_bytes(self, spec: StreamSpec, after_key: str | None) -> int:
        """The mean encoded size of the next rows to copy."""
        query = btql.Query(
            spec.kind, [spec.src_id], sort=[("_pagination_key", "asc")], limit=PLAN_SAMPLE_ROWS
        )
        query.where(self.window.btql())
        if after_key:
            query.where(btql.cmp("_pagination_key", ">", after_key))
        rows = (await self.ctx.source.post_json("/btql", query.body())).get("data") or []
        return sum(len(orjson.dumps(r)) for r in rows) // len(rows) if rows else 0


def plan_report(containers: list[dict[str, Any]]) -> dict[str, Any]:
    """The `events.plan` section of a dry run's report: totals per row type and every container."""
    totals: dict[str, dict[str, int]] = {}
    for container in containers:
        row = totals.setdefault(
            container["type"],
            {"containers": 0, "rows_total": 0, "rows_to_copy": 0, "already_copied": 0, "bytes_estimate": 0},
        )
        row["containers"] += 1
        for name in ("rows_total", "rows_to_copy", "already_copied", "bytes_estimate"):
            row[name] += container.get(name) or 0
    return {"totals": totals, "containers": containers}


def stream_report(outcomes: list[StreamOutcome]) -> dict[str, Any]:
    totals: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        row = totals.setdefault(
            outcome.to_dict()["type"],
            {"containers": 0, "rows_read": 0, "rows_written": 0, "rows_failed": 0, "bytes": 0},
        )
        row["containers"] += 1
        row["rows_read"] += outcome.rows_read
        row["rows_written"] += outcome.rows_written
        row["rows_failed"] += outcome.rows_failed
        row["bytes"] += outcome.bytes
    return {"totals": totals, "containers": [o.to_dict() for o in outcomes]}
