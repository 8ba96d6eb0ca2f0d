"""The event streams of a run: which containers of a stream are copied, with which pins, many
containers at once under one bound; and a dry run's row plan."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from braintrust_migrate.client import ApiClient, ApiError
from braintrust_migrate.config import Settings
from braintrust_migrate.engine import narrate
from braintrust_migrate.engine.context import RunContext, is_placeholder
from braintrust_migrate.engine.events.attachments import Attachments
from braintrust_migrate.engine.events.sharing import plan_shares, ready_waves
from braintrust_migrate.engine.events.state import EventState
from braintrust_migrate.engine.events.stream import ByteBudget, Stream, StreamEnv, StreamOutcome, StreamSpec
from braintrust_migrate.engine.events.versions import PinLog
from braintrust_migrate.engine.graph import Node, target_keys, written
from braintrust_migrate.engine.inventory import Inventory
from braintrust_migrate.engine.refs import POLYMORPHIC_KINDS, find_slots
from braintrust_migrate.engine.resources import BY_KIND, RESOURCE_TYPES, STREAMS, EventStream, ResourceType
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.source.reader import Window

log = get_logger(__name__)

PAYLOAD_HEADROOM = 0.9
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


def pins_of(
    rt: ResourceType, obj: dict[str, Any], stream: EventStream | None = None
) -> list[tuple[str, str]]:
    """(container id, version) for each version of a stream's container that `obj` pins."""
    containers = {s.container for s in STREAMS.values()} if stream is None else {stream.container}
    return [
        (str(slot.value), str(slot.version))
        for slot in find_slots(rt.kind, obj)
        if slot.ref.version_field and slot.version and slot.target in containers
    ]


def pinned_versions(inv: Inventory, stream: EventStream) -> dict[str, set[str]]:
    """Container id -> the versions of it that the inventory's objects point at."""
    pins: dict[str, set[str]] = {}
    for rt in RESOURCE_TYPES:
        for obj in inv.of(rt.kind):
            for container, version in pins_of(rt, obj, stream):
                pins.setdefault(container, set()).add(version)
    return pins


class EventStage:
    def __init__(
        self,
        ctx: RunContext,
        settings: Settings,
        on_rows: Callable[[StreamSpec, int, int], None],
        on_totals: Callable[[str, int], None] | None,
        *,
        counted: dict[tuple[str, str], int] | None = None,
    ) -> None:
        """`counted`: rows to read per (stream kind, container), known already (a follow pass)."""
        self.ctx, self.settings = ctx, settings
        self.counted = counted
        self.on_rows, self.on_totals = on_rows, on_totals
        self.events = EventState(ctx.state)
        self.budget = ByteBudget(settings.migration_max_bytes_in_flight)
        # One bound for every stream of the run, however many steps copy rows at once.
        self.slots = asyncio.Semaphore(settings.migration_max_concurrent_resources)
        self._expected: dict[str, int | None] = {}
        self._totals: dict[str, int] = {}  # rows to expect per stream kind, summed as containers start
        self._count_slots = asyncio.Semaphore(settings.migration_max_concurrent_resources)
        self._env: StreamEnv | None = None
        self._open: dict[str, list[Node]] = {}  # per phase, its objects not yet written
        self._pins: dict[str, dict[str, set[str]]] = {}
        # (stream kind, container source id) -> set once that container's rows are copied (or not
        # to be): what pins one of its versions waits for this, not for the whole stream.
        self._copied: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._pin_log: PinLog | None = None

    def pins(self, stream: EventStream) -> dict[str, set[str]]:
        """The stream's pinned versions, read from the (unchanging) source inventory once."""
        if stream.kind not in self._pins:
            self._pins[stream.kind] = pinned_versions(self.ctx.src_inv, stream)
        return self._pins[stream.kind]

    def specs(self, stream: EventStream, *, planned: bool = False) -> list[StreamSpec]:
        """The containers of a stream whose rows this run copies (`planned`: also those a dry run
        would create first)."""
        return [
            spec for node in self.containers(stream) if (spec := self.spec_for(stream, node, planned=planned))
        ]

    def containers(self, stream: EventStream) -> list[Node]:
        return [node for node in self.ctx.nodes.values() if node.rt.kind == stream.container]

    def spec_for(self, stream: EventStream, node: Node, *, planned: bool = False) -> StreamSpec | None:
        """One container's stream, once its destination container is known (None: not copied)."""
        dest_id = self.ctx.peek(stream.container, node.src["id"])
        if not dest_id or (is_placeholder(dest_id) and not planned):
            return None
        pins = sorted(int(v) for v in self.pins(stream).get(node.src["id"], ()) if v.isdigit())
        project = node.project or node.name  # a project's own logs: the project
        new_dest = node.key in self.ctx.created
        return StreamSpec(stream.kind, node.src["id"], dest_id, node.name, project, pins, new_dest)

    def _copied_future(self, kind: str, src_id: str) -> asyncio.Future[None]:
        if (kind, src_id) not in self._copied:
            self._copied[(kind, src_id)] = asyncio.get_running_loop().create_future()
        return self._copied[(kind, src_id)]

    def mark_copied(self, stream: EventStream, src_ids: list[str], *, record: bool = True) -> None:
        """Those containers' rows are copied (or will not be this run): their pins translate now
        (`record`: not in a dry run, which writes no version)."""
        # Once per container: the run's end marks every container, most of them marked already.
        fresh = [i for i in src_ids if not self._copied_future(stream.kind, i).done()]
        if record and fresh:
            self.record_pins(stream, set(fresh))
        for src_id in fresh:
            self._copied[(stream.kind, src_id)].set_result(None)

    async def pinned_rows_copied(self, node: Node, streams: list[EventStream]) -> None:
        """Until the rows of every container `node` pins a version of are copied (streams: those
        this run copies), so its pins translate; then, not after every container of the stream."""
        waits = [
            self._copied_future(stream.kind, container)
            for stream in streams
            for container, _ in pins_of(node.rt, node.src, stream)
            if (stream.container, container) in self.ctx.nodes  # else this run copies none of it
        ]
        if waits:
            await asyncio.gather(*map(asyncio.shield, waits))

    async def origins_ready(self, stream: EventStream, rows: list[dict[str, Any]]) -> None:
        """Rows are written once the objects their origins name are: a pending one is waited for
        (only in the container's own phase: later phases may wait for these very rows)."""
        phase = BY_KIND[stream.container].phase
        if phase not in self._open:
            self._open[phase] = [n for n in self.ctx.nodes.values() if n.rt.phase == phase]
        self._open[phase] = [n for n in self._open[phase] if n.done is not None and not n.done.done()]
        if not self._open[phase]:  # the phase is written: nothing left to wait for, no row to look at
            return
        pending = []
        for row in rows:
            origin = row.get("origin")
            if not isinstance(origin, dict):
                continue
            for key in target_keys(
                POLYMORPHIC_KINDS.get(str(origin.get("object_type"))), str(origin.get("object_id"))
            ):
                node = self.ctx.nodes.get(key)
                if node is not None and node.rt.phase == phase:
                    pending.append(node)
        await written(pending)

    async def run_as_ready(
        self, stream: EventStream, keep: Callable[[StreamSpec], bool] | None = None
    ) -> list[StreamOutcome]:
        """Each container's rows as soon as its destination container exists, not after every
        object of the run; small containers in shared reads (sharing.py); outcomes in container
        order. `keep`: which specs a pass reads."""
        nodes = self.containers(stream)
        env = await self.env()
        counts = await self._counts_first(env, stream, nodes)  # none: no sharing
        alone = set(self.pins(stream))  # pinned versions are replayed per container, in order
        ids = [node.src["id"] for node in nodes]
        share_below = self.settings.migration_shared_read_rows
        by_id = {node.src["id"]: node for node in nodes}

        async def one(group: list[Node]) -> list[StreamOutcome]:
            try:
                return await copy(group)
            finally:
                self.mark_copied(stream, [node.src["id"] for node in group])

        async def copy(group: list[Node]) -> list[StreamOutcome]:
            await written(group)
            specs = [
                spec
                for node in group
                if (spec := self.spec_for(stream, node)) and (keep is None or keep(spec))
            ]
            if not specs:
                return []
            counting = None
            if counts:
                self._add_totals(specs)
            elif self.on_totals:
                counting = asyncio.create_task(self._count(env, specs))
            try:
                outcomes = await self._run_group(env, specs)
                if counting is not None:
                    await counting
            finally:
                if counting is not None and not counting.done():
                    counting.cancel()
            for outcome in outcomes:
                outcome.expected_rows = self._expected.get(outcome.spec.src_id)
            return outcomes

        # Containers that exist already (all of them, unless rows overlap the objects) are grouped
        # at once; the others as they are written, so a group never waits for its last member.
        tasks: list[asyncio.Task[list[StreamOutcome]]] = []
        try:
            async for wave in ready_waves(nodes):
                wave_ids = [node.src["id"] for node in wave]
                groups = (
                    plan_shares(wave_ids, counts, share_below, env.page_size, alone)
                    if counts
                    else [[i] for i in wave_ids]
                )
                # Pinned containers first: their versions are replayed one after another, and
                # what pins them waits for them.
                groups.sort(key=lambda group: not alone.intersection(group))
                tasks += [asyncio.create_task(one([by_id[i] for i in group])) for group in groups]
            results = await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # one failed or the run was interrupted: none is left running
                task.cancel()
        order = {src_id: n for n, src_id in enumerate(ids)}
        return sorted((o for group in results for o in group), key=lambda o: order[o.spec.src_id])

    async def _counts_first(
        self, env: StreamEnv, stream: EventStream, nodes: list[Node]
    ) -> dict[str, int | None]:
        """Every container's rows, counted together before any is read, where the source can
        (none: sharing is off, or the source counts one container at a time)."""
        if not self.settings.migration_shared_read_rows or not env.source.shares_reads or not nodes:
            return {}
        ids = [n.src["id"] for n in nodes]
        if self.counted is not None:  # a container first seen by this pass: size unknown, read alone
            counts: dict[str, int | None] = {i: self.counted.get((stream.kind, i)) for i in ids}
        else:
            try:
                counts = await env.source.counts(stream.kind, ids, env.window)
            except ApiError:
                return {}
        if all(value is None for value in counts.values()):
            return {}
        self._expected.update(counts)
        return counts

    async def env(self) -> StreamEnv:
        if self._env is None:
            self._env = await self._make_env()
        return self._env

    async def _make_env(self) -> StreamEnv:
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
            ready=self._ready,
        )

    async def _ready(self, kind: str, rows: list[dict[str, Any]]) -> None:
        await self.origins_ready(STREAMS[kind], rows)

    async def _run_group(self, env: StreamEnv, specs: list[StreamSpec]) -> list[StreamOutcome]:
        async with self.slots:
            outcomes = await Stream(env, specs).run()
        for outcome in outcomes:
            spec = outcome.spec
            narrate.stream_finished(
                spec.kind, spec.name, outcome.rows_written, outcome.rows_failed, outcome.duration_s
            )
        return outcomes

    async def _count(self, env: StreamEnv, specs: list[StreamSpec]) -> None:
        """Rows to expect per container, for progress (ETA) and the report."""

        async def count(spec: StreamSpec) -> tuple[str, int | None]:
            async with self._count_slots:
                try:
                    return spec.src_id, await env.source.count(spec.kind, spec.src_id, env.window)
                except ApiError:
                    return spec.src_id, None

        self._expected.update(await asyncio.gather(*(count(spec) for spec in specs)))
        self._add_totals(specs)

    def _add_totals(self, specs: list[StreamSpec]) -> None:
        """Containers start one by one: the progress totals grow with them."""
        kinds = set()
        for spec in specs:
            self._totals[spec.kind] = self._totals.get(spec.kind, 0) + (self._expected.get(spec.src_id) or 0)
            kinds.add(spec.kind)
        for kind in sorted(kinds):
            if self.on_totals:
                self.on_totals(kind, self._totals[kind])

    def record_pins(self, stream: EventStream, only: set[str] | None = None) -> None:
        """Make pinned versions of the stream's containers (`only` those) translatable by the
        object engine."""
        if self._pin_log is None:
            self._pin_log = PinLog(self.events.db)
        pin_log = self._pin_log
        for container, versions in self.pins(stream).items():
            if only is not None and container not in only:
                continue
            dest_container = self.ctx.peek(stream.container, container)
            if not dest_container:
                continue
            for version in versions:
                # Only a pin written as its own version translates; any other is dropped with a note.
                pin = str(int(version)) if version.isdigit() else version
                dest = pin_log.dest_xact(container, dest_container, pin)
                if dest:
                    self.ctx.state.record_xact(stream.container, container, version, dest)


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
            "type": STREAMS[spec.kind].report_type,
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
        return await self.ctx.source.count(spec.kind, spec.src_id, self.window, after_key)

    async def _sample_bytes(self, spec: StreamSpec, after_key: str | None) -> int:
        """The mean encoded size of the next rows to copy."""
        rows = await self.ctx.source.sample(spec.kind, spec.src_id, self.window, after_key, PLAN_SAMPLE_ROWS)
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
