"""Walking a run's steps: the objects (org first, then every project at once, then deferred
references settled), later phases, event streams, and the second write of objects that pin
versions of rows. Mixed into the Runner, which holds the run's progress, tally and outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from braintrust_migrate.engine import narrate
from braintrust_migrate.engine.apply import migrate_node
from braintrust_migrate.engine.context import RunContext
from braintrust_migrate.engine.events.stage import EventStage, RowPlanner, pins_of
from braintrust_migrate.engine.events.stream import StreamOutcome, StreamSpec
from braintrust_migrate.engine.graph import Key, Node, written
from braintrust_migrate.engine.inventory import ALL_LISTABLE, relist
from braintrust_migrate.engine.progress import ProgressView
from braintrust_migrate.engine.report import Outcome
from braintrust_migrate.engine.resources import EventStream, ResourceType
from braintrust_migrate.engine.shards import Mode, prune
from braintrust_migrate.engine.steps import (
    Step,
    dependencies,
    order,
    per_container_pins,
    repin_types,
    run_in_order,
)
from braintrust_migrate.engine.tally import StreamTally
from braintrust_migrate.liblog import get_logger

if TYPE_CHECKING:
    from braintrust_migrate.config import Settings
    from braintrust_migrate.engine.context import Options

log = get_logger(__name__)
T = TypeVar("T")

MAX_SETTLE_ROUNDS = 5


class PhaseClock:
    def __init__(self) -> None:
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        log.info("phase finished", phase=phase, seconds=round(now - self.last, 3))
        self.last = now


def refused(rt: ResourceType, name: str, reason: str, error: Any) -> Outcome:
    """A failed outcome for what a key may not list or write."""
    return Outcome(
        type=rt.name, kind=rt.kind, name=name, source_id=f"*{name}", action="failed", reason=reason,
        error=error.to_dict(),
    )  # fmt: skip


def refused_node(node: Node, reason: str, error: Any) -> Outcome:
    """`refused` for one object the run will not write."""
    outcome = refused(node.rt, node.name, reason, error)
    outcome.source_id, outcome.project = node.src["id"], node.project
    return outcome


def _version_of(ctx: RunContext, node: Node) -> str | None:
    """The destination version the node's current source version translates to (versioned types)."""
    version = node.src.get("_xact_id")
    if not node.rt.versioned or not version:
        return None
    return ctx.state.dest_xact(node.rt.kind, node.src["id"], str(version))


class StepWalker:
    """The step-running half of a Runner (engine/runner.py)."""

    settings: Settings
    options: Options
    progress: ProgressView
    tally: StreamTally
    streams: list[StreamOutcome]
    row_plan: list[dict[str, Any]]
    on_event: Callable[[dict[str, Any]], None] | None
    stream_filter: Callable[[StreamSpec], bool] | None = None  # follow: streams a pass reads
    # follow: rows behind per (stream kind, container), counted before the pass: no count again
    stream_counts: dict[tuple[str, str], int] | None = None
    shard: Mode = None  # --shard (engine/shards.py)

    def _record(self, ctx: RunContext, outcome: Outcome) -> None:
        raise NotImplementedError

    async def _steps(self, ctx: RunContext, types: list[ResourceType], streams: list[EventStream]) -> None:
        """Every step of the run in the order the tables imply (engine/steps.py)."""
        clock = PhaseClock()
        s = self.settings
        per_type: dict[tuple[str | None, str], asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(s.migration_max_concurrent_resources)
        )
        graph = dependencies(types, streams, overlap=s.migration_overlap_rows)
        graph = prune(graph, self.shard)  # --shard: its part of the steps
        log.debug("run order", steps=order(graph))
        copying = [step.stream for step in graph if step.stream is not None]
        graph = per_container_pins(graph)
        totals = self.progress.add_rows_total if self.progress.enabled else None

        def on_rows(spec: StreamSpec, rows: int, nbytes: int) -> None:
            self.tally.on_rows(spec, rows, nbytes)
            self.progress.advance_rows(spec, rows, nbytes)
            if self.on_event:
                self.on_event({"event": "rows", "spec": spec, "rows": rows, "bytes": nbytes})

        stage = EventStage(ctx, s, on_rows, totals, counted=self.stream_counts)

        async def pinned_rows(node: Node) -> None:
            await stage.pinned_rows_copied(node, copying)

        async def run(step: Step) -> None:
            if step.phase == "objects":
                rewritten = await self._objects(ctx, per_type)
                await self._settle_deferred(ctx, rewritten)
            elif step.phase is not None:
                await self._later_phase(ctx, step.phase, per_type, pinned_rows)
            elif step.stream is not None:
                await self._rows(ctx, stage, step.stream)
            elif step.repin is not None and not self.options.dry_run:
                await self._repin(ctx, types, step.repin, per_type, pinned_rows)
            clock.lap(step.name)

        await run_in_order(graph, run)

    async def _objects(
        self, ctx: RunContext, per_type: dict[tuple[str | None, str], asyncio.Semaphore]
    ) -> set[Key]:
        """Objects outside projects (projects included) and every project's at once: each object
        waits only for the objects it references (graph.link makes a reference to an org object a
        hard dependency), not for the whole org phase. An org object never waits for a project's
        (such references are soft), so the per-project cap cannot deadlock.

        An object written without a soft reference gets it patched in as soon as what it names
        exists, while the other objects are still being written, not in a round after them all.
        Returns the objects those patches rewrote (objects pinning their versions are revisited)."""
        nodes = [n for n in ctx.nodes.values() if n.rt.phase == "objects"]
        narrate.org_phase_started()
        rewritten: set[Key] = set()
        settles: list[asyncio.Task[None]] = []

        def settle_soon(node: Node, outcome: Outcome) -> None:
            targets = [ctx.nodes[key] for key in node.soft if key in ctx.nodes]
            if any(target.rt.phase != "objects" for target in targets):
                return  # it names an object of a later phase: settled after this one, as before
            settles.append(
                asyncio.create_task(self._settle_one(ctx, node, outcome, targets, per_type, rewritten))
            )

        org_phase = self._run_dag(
            ctx, [n for n in nodes if n.project_id is None], per_type, on_pending=settle_soon
        )
        by_project: dict[str, list[Node]] = {}
        for node in nodes:
            if node.project_id is not None:
                by_project.setdefault(node.project_id, []).append(node)
        project_slots = asyncio.Semaphore(self.settings.migration_max_concurrent)
        starts = narrate.ProjectStarts(len(by_project))

        async def one_project(members: list[Node]) -> None:
            async with project_slots:
                starts(members[0].project)
                await self._run_dag(ctx, members, per_type, on_pending=settle_soon)

        try:
            await asyncio.gather(org_phase, *(one_project(members) for members in by_project.values()))
            await asyncio.gather(*settles)
        finally:
            for task in settles:  # an interrupted run leaves none behind
                task.cancel()
        return rewritten

    async def _settle_one(
        self,
        ctx: RunContext,
        node: Node,
        first: Outcome,
        targets: list[Node],
        sems: dict[tuple[str | None, str], asyncio.Semaphore],
        rewritten: set[Key],
    ) -> None:
        """Patch one object's deferred references in once every object they name is written."""
        await written(targets)
        version = _version_of(ctx, node)
        async with self._slot(node, sems):
            second = await migrate_node(ctx, node, final=True)
        self._settled(ctx, node, first, second, version, rewritten)

    @staticmethod
    def _slot(
        node: Node, sems: dict[tuple[str | None, str], asyncio.Semaphore]
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        # A batched type's writers must meet in its batcher: the batch bounds them.
        return contextlib.nullcontext() if node.rt.batch else sems[(node.project_id, node.rt.name)]

    async def _later_phase(
        self,
        ctx: RunContext,
        phase: str,
        per_type: dict[tuple[str | None, str], asyncio.Semaphore],
        pinned_rows: Callable[[Node], Awaitable[None]],
    ) -> None:
        """A phase after the objects: its destination objects are read again first (the run has
        written since), then its objects are written with every reference final, each one that
        pins a version of rows once those rows are copied."""
        nodes = [n for n in ctx.nodes.values() if n.rt.phase == phase]
        listed = {n.rt.name: n.rt for n in nodes if n.rt in ALL_LISTABLE}
        for rt in listed.values():
            if await relist(ctx.dest_view, ctx.dst_inv, ctx.dest_org_name, rt):
                continue
            error = ctx.dst_inv.unreadable[-1].error
            for node in [n for n in nodes if n.rt is rt]:
                nodes.remove(node)
                if node.done is not None and not node.done.done():
                    node.done.set_result(None)
                self._record(ctx, refused_node(node, "destination_not_readable", error))
        await self._run_dag(ctx, nodes, per_type, final=True, before=pinned_rows)

    async def _bounded(self, coroutines: Iterable[Awaitable[T]]) -> list[T]:
        """Run independent steps concurrently, as many at once as one resource type may."""
        slots = asyncio.Semaphore(self.settings.migration_max_concurrent_resources)

        async def one(step: Awaitable[T]) -> T:
            async with slots:
                return await step

        return list(await asyncio.gather(*(one(step) for step in coroutines)))

    async def _rows(self, ctx: RunContext, stage: EventStage, stream: EventStream) -> None:
        """One stream's rows, each container's as soon as it exists; a dry run reads, per container,
        how many the real run would copy."""
        try:
            if self.options.dry_run:
                await written(stage.containers(stream))
                self.row_plan += await RowPlanner(ctx, self.settings).plan(stage.specs(stream, planned=True))
            else:
                self.streams += await stage.run_as_ready(stream, self.stream_filter)
        finally:  # what pins a version of them waits no longer, however the stream ended
            ids = [node.src["id"] for node in stage.containers(stream)]
            stage.mark_copied(stream, ids, record=not self.options.dry_run)

    async def _repin(
        self,
        ctx: RunContext,
        types: list[ResourceType],
        stream: EventStream,
        per_type: dict[tuple[str | None, str], asyncio.Semaphore],
        pinned_rows: Callable[[Node], Awaitable[None]],
    ) -> None:
        """Objects pinning a version of `stream`'s rows, each written again as soon as the rows of
        what it pins exist (not once every container's are)."""
        pinning = set(repin_types(types, stream))
        outcomes = {(o.kind, o.source_id): o for o in ctx.outcomes}
        todo = [
            (outcomes[node.key], node)
            for node in ctx.nodes.values()
            if node.rt in pinning
            and node.key in outcomes
            and pins_of(node.rt, node.src)
            and outcomes[node.key].action not in ("failed", "skipped", "conflict")
        ]

        async def again(first: Outcome, node: Node) -> None:
            await pinned_rows(node)
            async with self._slot(node, per_type):
                second = await migrate_node(ctx, node, final=True)
            self._merge_settled(ctx, first, second)

        await asyncio.gather(*(again(first, node) for first, node in todo))

    async def _run_dag(
        self,
        ctx: RunContext,
        nodes: list[Node],
        sems: dict[tuple[str | None, str], asyncio.Semaphore],
        *,
        final: bool = False,
        on_pending: Callable[[Node, Outcome], None] | None = None,
        before: Callable[[Node], Awaitable[None]] | None = None,
    ) -> None:
        async def one(node: Node) -> None:
            assert node.done is not None
            try:
                await written(ctx.nodes[dep] for dep in node.deps)
                if before is not None:
                    await before(node)
                async with self._slot(node, sems):
                    outcome = await migrate_node(ctx, node, final=final)
                self._record(ctx, outcome)
                node.done.set_result(outcome.dest_id if outcome.action != "failed" else None)
                if outcome.pending and on_pending is not None:
                    on_pending(node, outcome)
            finally:
                if not node.done.done():
                    node.done.set_result(None)

        await asyncio.gather(*(one(node) for node in nodes))

    async def _settle_deferred(self, ctx: RunContext, patched: set[Key] | None = None) -> None:
        """Patch in references that pointed at objects created later (cycles, other projects)
        that are still pending.

        Writing an object gives it a new transaction id, so objects pinning a version of one
        just patched (`patched`: by the object phase's own patches first) are revisited until
        nothing changes (a few rounds at most).
        """
        by_key = {(o.kind, o.source_id): o for o in ctx.outcomes}
        todo = [o for o in ctx.outcomes if o.pending]
        todo += [o for o in self._pinning(ctx, by_key, patched or set()) if not o.pending]
        for _ in range(MAX_SETTLE_ROUNDS):
            if not todo:
                return
            rewritten: set[Key] = set()
            nodes = [ctx.nodes[(first.kind, first.source_id)] for first in todo]
            versions = {node.key: _version_of(ctx, node) for node in nodes}
            seconds = await self._bounded(migrate_node(ctx, node, final=True) for node in nodes)
            for first, node, second in zip(todo, nodes, seconds, strict=True):
                self._settled(ctx, node, first, second, versions[node.key], rewritten)
            todo = self._pinning(ctx, by_key, rewritten)

    def _settled(
        self,
        ctx: RunContext,
        node: Node,
        first: Outcome,
        second: Outcome,
        version: str | None,
        rewritten: set[Key],
    ) -> None:
        """Fold a settling write into the first outcome; `rewritten` gets the node if it changed."""
        self._merge_settled(ctx, first, second)
        # An object found complete ("unchanged") can still move the version its pins translate
        # to (an earlier record named an incomplete write): pins follow either way.
        if second.action in ("created", "updated") or _version_of(ctx, node) != version:
            rewritten.add(node.key)

    @staticmethod
    def _pinning(ctx: RunContext, by_key: dict[Key, Outcome], rewritten: set[Key]) -> list[Outcome]:
        """The outcomes of objects that reference one of `rewritten` (and may pin its version)."""
        if not rewritten:
            return []
        return [
            by_key[node.key]
            for node in ctx.nodes.values()
            if (node.deps | node.soft) & rewritten
            and node.key in by_key
            and by_key[node.key].action not in ("failed", "skipped", "conflict")
        ]

    def _merge_settled(self, ctx: RunContext, first: Outcome, second: Outcome) -> None:
        first.pending = second.pending
        if second.action == "failed" or first.action == "unchanged":
            first.action, first.reason, first.error = second.action, second.reason, second.error
        first.unresolved = second.unresolved
        first.notes += [n for n in second.notes if n not in first.notes]
        if (
            second.action in ("updated", "created")
            and "references patched in after creation" not in first.notes
        ):
            first.notes.append("references patched in after creation")
        first.dest_id = second.dest_id or first.dest_id
        if not self.options.dry_run:
            ctx.state.record_outcome(ctx.run_id, first.kind, first.source_id, first.to_dict())
