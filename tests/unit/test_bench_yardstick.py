"""The objects bench's critical-path yardstick (bench/yardstick.py)."""

from __future__ import annotations

import pytest
from bench.yardstick import critical_path, ideal_seconds


def test_longest_chain_follows_costs_not_node_count() -> None:
    # project -> experiment -> rows (3 trips) beats project -> a -> b -> c at 1 trip each.
    deps = {"project": [], "experiment": ["project"], "rows": ["experiment", "reads"], "reads": [],
            "a": ["project"], "b": ["a"], "c": ["b"]}  # fmt: skip
    cost = {"rows": 3, "reads": 5}
    total, chain = critical_path(deps, cost)
    assert (total, chain) == (8, ["reads", "rows"])
    cost["reads"] = 1
    assert critical_path(deps, cost) == (5, ["project", "experiment", "rows"])


def test_diamond_counts_once_and_unknown_deps_are_ignored() -> None:
    deps = {"a": ["b", "c", "outside"], "b": ["c"], "c": []}
    assert critical_path(deps, {"c": 0}) == (2, ["c", "b", "a"])
    assert critical_path({}, {}) == (0, [])


def test_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        critical_path({"a": ["b"], "b": ["a"]}, {})


def test_ideal_adds_chain_and_throughput() -> None:
    assert ideal_seconds(10, 400, 0.1, 20) == pytest.approx(1.0 + 2.0)
