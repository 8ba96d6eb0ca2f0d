"""The event stage of a run: dataset rows first (experiments and snapshots pin their
versions), then experiment rows and project logs, many containers at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from braintrust_migrate.client import ApiClient, ApiError
from braintrust_migrate.config import Settings
from braintrust_migrate.engine.context import RunContext
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

    def specs(self, container: str) -> list[StreamSpec]:
        name = next(n for n, (c, _) in STREAMED_TYPES.items() if c == container)
        if name not in self.selected:
            return []
        kind = STREAMED_TYPES[name][1]
        specs = []
        for node in self.ctx.nodes.values():
            if node.rt.kind != kind:
                continue
            dest_id = self.ctx.peek(kind, node.src["id"])
            if not dest_id or dest_id.startswith("dry-run:"):
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
            log.info(
                "streamed",
                container=spec.kind,
                name=spec.name,
                rows=outcome.rows_written,
                failed=outcome.rows_failed,
                seconds=round(outcome.duration_s, 2),
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
