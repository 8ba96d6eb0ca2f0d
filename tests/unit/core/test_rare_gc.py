"""Streams raise the cyclic collector's thresholds while any of them runs, and restore them after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from braintrust_migrate.engine.events.stream import RARE_GC, rare_collections


@pytest.fixture
def default_thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield (700, 10, 10)
    gc.set_threshold(*saved)


def test_nested_streams_keep_rare_collections_until_the_last_ends(
    default_thresholds: tuple[int, int, int],
) -> None:
    with rare_collections():
        assert gc.get_threshold() == RARE_GC
        with rare_collections():
            assert gc.get_threshold() == RARE_GC
        assert gc.get_threshold() == RARE_GC  # another stream still runs
    assert gc.get_threshold() == default_thresholds


def test_thresholds_come_back_after_a_failure(default_thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError), rare_collections():
        raise RuntimeError("stream failed")
    assert gc.get_threshold() == default_thresholds


def test_higher_thresholds_set_by_the_host_are_not_lowered() -> None:
    saved = gc.get_threshold()
    gc.set_threshold(200_000, 50, 100)
    try:
        with rare_collections():
            assert gc.get_threshold() == (200_000, 50, 100)
        assert gc.get_threshold() == (200_000, 50, 100)
    finally:
        gc.set_threshold(*saved)
