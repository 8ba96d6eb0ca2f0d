"""Which containers share one read: small ones, packed together, so an org of many small
experiments or datasets costs a few BTQL queries and cross-object inserts instead of a query,
an insert and a count each. A container too big, pinned, or of unknown size reads alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from braintrust_migrate.engine.graph import Node

# Containers per shared read: one BTQL `from:` lists them all.
SHARE_IDS = 100
# A shared read holds at most one page of rows: as much as a small container read alone holds in
# memory (two pages per group measured ~95 MiB more peak RSS on the e2e bench, for no wall gain).
SHARE_PAGES = 1
# While objects are still being written (--overlap-rows), containers are grouped as they come into
# being: after the first of a wave exists, this long is given to the ones written beside it.
WAVE_SECONDS = 0.2


def plan_shares(
    ids: Iterable[str], counts: dict[str, int | None], share_below: int, page_size: int, alone: set[str]
) -> list[list[str]]:
    """Read groups: each container of more than `share_below` rows, of unknown
    size, or in `alone` by itself; the rest packed greedily up to SHARE_PAGES pages and SHARE_IDS."""
    groups: list[list[str]] = []
    current: list[str] = []
    rows = 0
    budget = max(page_size * SHARE_PAGES, share_below)
    for src_id in ids:
        count = counts.get(src_id)
        if count is None or count > share_below or src_id in alone:
            groups.append([src_id])
            continue
        if current and (len(current) >= SHARE_IDS or rows + count > budget):
            groups.append(current)
            current, rows = [], 0
        current.append(src_id)
        rows += count
    if current:
        groups.append(current)
    return groups


async def ready_waves(nodes: Sequence[Node], wait: float = WAVE_SECONDS) -> AsyncIterator[list[Node]]:
    """`nodes` in waves of those whose destination container exists (their `done` is set), in
    their own order within a wave: everything at once when the objects are all written already."""
    arrived: asyncio.Queue[Node] = asyncio.Queue()

    def on_written(node: Node) -> Callable[[object], None]:
        return lambda _future: arrived.put_nowait(node)

    waiting = 0
    now: list[Node] = []
    for node in nodes:
        future = node.done
        if future is None or future.done():
            now.append(node)
        else:
            waiting += 1
            future.add_done_callback(on_written(node))
    if now:
        yield now
    order = {node: n for n, node in enumerate(nodes)}  # nodes compare by identity
    while waiting:
        wave = [await arrived.get()]
        await asyncio.sleep(wait)
        while not arrived.empty():
            wave.append(arrived.get_nowait())
        waiting -= len(wave)
        yield sorted(wave, key=order.__getitem__)
