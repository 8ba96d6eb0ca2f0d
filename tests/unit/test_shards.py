"""The shard assignment is stable and covers every container once; each kind of run takes its
part of the steps (objects: none after rows; a shard: rows only)."""

from __future__ import annotations

import hashlib

from braintrust_migrate.engine.resources import EVENT_STREAMS, RESOURCE_TYPES
from braintrust_migrate.engine.shards import Shard, prune, shard_index
from braintrust_migrate.engine.steps import dependencies


def test_assignment_is_a_stable_hash_mod_n() -> None:
    for n in (1, 2, 3, 7):
        for i in range(50):
            src_id = f"00000000-0000-0000-0000-{i:012d}"
            # Written out independently: the same on every machine and Python (not hash()).
            expected = int.from_bytes(hashlib.sha256(f"dataset\0{src_id}".encode()).digest()[:8], "big") % n
            assert shard_index("dataset", src_id, n) == expected
            owners = [k for k in range(n) if Shard(k, n).owns("dataset", src_id)]
            assert owners == [expected]


def test_assignment_spreads_containers() -> None:
    counts = [0, 0, 0]
    for i in range(300):
        counts[shard_index("experiment", f"e-{i}", 3)] += 1
    assert min(counts) > 60


def test_each_run_takes_its_steps() -> None:
    graph = dependencies(RESOURCE_TYPES, EVENT_STREAMS)
    objects = prune(graph, "objects")
    assert objects and all(s.stream is None and s.repin is None for s in objects)
    assert "after_rows" not in {s.phase for s in objects}  # snapshots need the dataset rows
    assert {s.phase for s in objects} >= {"objects"}
    rows = prune(graph, Shard(0, 2))
    assert {s.name for s in rows} == {f"rows:{s.kind}" for s in EVENT_STREAMS}
    assert all(deps == set() for deps in rows.values())
    assert prune(graph, None) is graph
