"""Object-level dependency graph: nodes, their references, and cycles broken by deferral."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.engine.refs import find_slots
from braintrust_migrate.engine.resources import BY_KIND, SHARED_ID_KINDS, ResourceType

Key = tuple[str, str]  # (kind, source id)


@dataclass(eq=False)
class Node:
    rt: ResourceType
    src: dict[str, Any]
    project: str | None  # source project name, for reports
    project_id: str | None  # source project id; None for org-scope objects
    deps: set[Key] = field(default_factory=set)
    soft: set[Key] = field(default_factory=set)  # resolved if known, else patched in later
    done: asyncio.Future[str | None] | None = None

    @property
    def key(self) -> Key:
        return (self.rt.kind, self.src["id"])

    @property
    def name(self) -> str:
        return self.rt.display_name(self.src)


async def written(nodes: Iterable[Node]) -> None:
    """Until every one of `nodes` is written (or given up): its destination id is final."""
    waits = [node.done for node in nodes if node.done is not None and not node.done.done()]
    if waits:
        await asyncio.gather(*map(asyncio.shield, waits))


def target_keys(kind: str | None, src_id: str) -> tuple[Key, ...]:
    if kind is None:
        return ()
    return tuple((k, src_id) for k in SHARED_ID_KINDS.get(kind, (kind,)))


def link(nodes: dict[Key, Node]) -> None:
    """Fill each node's dependencies from its references to other nodes of the run.

    References across projects are soft: waiting on them could deadlock the per-project
    concurrency cap, so they resolve when known and are patched in otherwise.
    """
    for node in nodes.values():
        for slot in find_slots(node.rt.kind, node.src):
            for key in target_keys(slot.target, slot.value):
                target = nodes.get(key)
                if target is None:
                    continue
                same_phase = target.project_id == node.project_id or target.project_id is None
                (node.deps if same_phase and target is not node else node.soft).add(key)
    _break_cycles(nodes)


def _break_cycles(nodes: dict[Key, Node]) -> None:
    for component in strongly_connected(nodes):
        if len(component) < 2:
            continue
        members = set(component)
        # Lower cycle ranks are created first; the others get the deferred reference patched in
        # afterwards, so that the objects the UI shows most are written complete.
        ranked = sorted(component, key=lambda k: (BY_KIND[k[0]].cycle_rank, k[1]))
        rank = {key: i for i, key in enumerate(ranked)}
        for key in component:
            node = nodes[key]
            for dep in list(node.deps & members):
                if rank[dep] > rank[key]:
                    node.deps.discard(dep)
                    node.soft.add(dep)


def strongly_connected(nodes: dict[Key, Node]) -> list[list[Key]]:
    """Tarjan's algorithm, iterative (dependency chains can be long)."""
    index: dict[Key, int] = {}
    low: dict[Key, int] = {}
    on_stack: set[Key] = set()
    stack: list[Key] = []
    result: list[list[Key]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[Key, Iterable[Key]]] = [(root, iter(sorted(nodes[root].deps)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            key, children = work[-1]
            advanced = False
            for child in children:
                if child not in nodes:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(nodes[child].deps))))
                    advanced = True
                    break
                if child in on_stack:
                    low[key] = min(low[key], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[key])
            if low[key] == index[key]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == key:
                        break
                result.append(component)
    return result
