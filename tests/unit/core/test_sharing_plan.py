"""Which containers share a read: small ones packed together, big / pinned / uncounted ones alone."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from braintrust_migrate.engine.events.sharing import SHARE_IDS, SHARE_PAGES, plan_shares, ready_waves


def test_small_ones_are_packed_and_the_rest_read_alone() -> None:
    page = 1000
    counts: dict[str, int | None] = {
        "a": 300,
        "b": 5000,
        "c": 300,
        "d": 300,
        "e": None,
        "f": 0,
        "g": 10,
        "h": 500,
    }
    groups = plan_shares(list(counts), counts, page, page, alone={"g"})
    # a + c + d + f fit one shared read of SHARE_PAGES pages; h would pass it, so it starts the next.
    assert SHARE_PAGES == 1
    assert sorted(groups) == [["a", "c", "d", "f"], ["b"], ["e"], ["g"], ["h"]]


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.one_of(st.none(), st.integers(0, 3000)), max_size=300),
    share_below=st.integers(0, 2000),
    page=st.integers(10, 1000),
)
def test_every_container_is_in_exactly_one_group_within_the_bounds(counts, share_below, page) -> None:
    ids = [f"c{n}" for n in range(len(counts))]
    by_id = dict(zip(ids, counts, strict=True))
    groups = plan_shares(ids, by_id, share_below, page, alone=set())
    assert sorted(i for group in groups for i in group) == sorted(ids)  # each exactly once
    for group in groups:
        if len(group) == 1:
            continue
        assert len(group) <= SHARE_IDS
        assert all(by_id[i] is not None and by_id[i] <= share_below for i in group)
        assert sum(by_id[i] or 0 for i in group) <= max(page * SHARE_PAGES, share_below)


class _Node:
    def __init__(self, name: str, done: asyncio.Future[str | None] | None) -> None:
        self.name, self.done = name, done


def test_ready_waves_yields_what_exists_at_once_and_the_rest_as_it_is_written() -> None:
    async def main() -> list[list[str]]:
        loop = asyncio.get_running_loop()
        written = _Node("a", None)
        done = loop.create_future()
        done.set_result("x")
        later = [loop.create_future() for _ in range(3)]
        nodes = [_Node("b", later[0]), written, _Node("c", done), _Node("d", later[1]), _Node("e", later[2])]
        loop.call_later(0.01, later[1].set_result, "d")
        loop.call_later(0.012, later[0].set_result, "b")  # inside d's wave
        loop.call_later(0.5, later[2].set_result, None)  # given up: still yielded, alone
        return [[n.name for n in wave] async for wave in ready_waves(nodes, wait=0.1)]

    assert asyncio.run(main()) == [["a", "c"], ["b", "d"], ["e"]]
