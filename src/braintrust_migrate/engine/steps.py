"""The order of a run, derived rather than written: which step waits for which follows from the
type table and the reference table (graphlib at type level; inside a step, the object graph of
graph.py orders the objects themselves)."""

from __future__ import annotations

import asyncio
import graphlib
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass

from braintrust_migrate.engine.refs import REFS_BY_OWNER, target_kinds
from braintrust_migrate.engine.resources import BY_KIND, EventStream, Phase, ResourceType

# Declaration order, for a stable order among steps that could run in any.
PHASES: tuple[Phase, ...] = ("objects", "settings", "grants", "after_rows")


@dataclass(frozen=True)
class Step:
    """One unit of a run: the objects of one phase, the rows of one stream, or the second write
    of objects that pin a version of rows (`repin`) once those rows are copied."""

    name: str
    phase: Phase | None = None
    stream: EventStream | None = None
    repin: EventStream | None = None


def _pins_rows(rt: ResourceType, stream: EventStream) -> bool:
    """Whether `rt` pins a version of `stream`'s containers (a transaction only its rows create)."""
    return any(ref.version_field and ref.target == stream.container for ref in REFS_BY_OWNER.get(rt.kind, ()))


def dependencies(
    types: Iterable[ResourceType], streams: Iterable[EventStream], *, overlap: bool = False
) -> dict[Step, set[Step]]:
    """Every step of a run with the steps it waits for. With `overlap`, a rows step does not wait
    for its container's phase as a whole (the stage awaits each container's own node)."""
    types, streams = list(types), list(streams)
    in_run = {rt.kind for rt in types}
    phase_steps = {
        phase: Step(phase, phase=phase) for phase in PHASES if any(rt.phase == phase for rt in types)
    }

    def phase_of(kind: str) -> Step | None:
        rt = BY_KIND.get(kind)
        return phase_steps.get(rt.phase) if rt is not None and kind in in_run else None

    graph: dict[Step, set[Step]] = {step: set() for step in phase_steps.values()}
    row_steps = {}
    # Without overlap, rows wait for their container's phase as a whole; with it, object by object
    # (the stage awaits each container's node) and these edges only check the tables for cycles.
    overlapped: dict[Step, Step] = {}
    for stream in streams:
        row_steps[stream.kind] = step = Step(f"rows:{stream.kind}", stream=stream)
        graph[step] = set()
        if (container_phase := phase_of(stream.container)) is not None:
            overlapped[step] = container_phase
    for rt in types:
        mine = phase_steps[rt.phase]
        targets = {t for ref in REFS_BY_OWNER.get(rt.kind, ()) for t in target_kinds(ref)}
        targets |= {rt.facet_of} if rt.facet_of else set()
        graph[mine] |= {s for s in map(phase_of, targets) if s and s != mine}
        for stream in streams:
            if not _pins_rows(rt, stream):
                continue
            if rt.required:  # it cannot exist before the version does
                graph[mine].add(row_steps[stream.kind])
            else:  # written with its objects, the pin added once the rows are there
                repin = Step(f"repin:{stream.kind}", repin=stream)
                # Its objects settled first (no longer implied by the rows step).
                graph.setdefault(repin, set()).update({row_steps[stream.kind], mine})
    whole = {
        step: deps | ({overlapped[step]} if step in overlapped else set()) for step, deps in graph.items()
    }
    # A phase needing rows whose containers it writes itself could never start: a cycle in the tables.
    graphlib.TopologicalSorter(whole).prepare()
    return graph if overlap else whole


def per_container_pins(graph: dict[Step, set[Step]]) -> dict[Step, set[Step]]:
    """The graph to run: a step waits for a rows step only because its objects pin versions of
    those rows (dependencies()), so it starts with its other steps done and each object waits for
    the rows of the containers it pins (EventStage.pinned_rows_copied) instead. The whole graph
    still decides what a sharded run leaves for later (shards.prune)."""
    rows = {step for step in graph if step.stream is not None}
    return {step: deps if step in rows else deps - rows for step, deps in graph.items()}


def repin_types(types: Iterable[ResourceType], stream: EventStream) -> list[ResourceType]:
    return [rt for rt in types if not rt.required and _pins_rows(rt, stream)]


def _rank(step: Step) -> tuple[int, str]:
    return (PHASES.index(step.phase) if step.phase else len(PHASES), step.name)


async def run_in_order(
    graph: dict[Step, set[Step]], run: Callable[[Step], Coroutine[object, object, None]]
) -> None:
    """Run every step once the steps it waits for are done, independent ones at the same time."""
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()  # a cycle here is a bug in the tables: graphlib.CycleError says where
    running: dict[asyncio.Task[None], Step] = {}
    try:
        while sorter.is_active():
            for step in sorted(sorter.get_ready(), key=_rank):
                running[asyncio.create_task(run(step))] = step
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                step = running.pop(task)
                task.result()  # a failed step stops the run, as an exception anywhere does
                sorter.done(step)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def order(graph: dict[Step, set[Step]]) -> list[str]:
    """The steps in one order the run may take (for logs and tests)."""
    return [step.name for step in graphlib.TopologicalSorter(graph).static_order()]
