"""The seed's event generator on its own: no server, no I/O."""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest

from braintrust_migrate.sandbox.seed.events_gen import (
    END_MS,
    START_MS,
    Attachments,
    DatasetRows,
    EventsSpec,
    ExperimentTraces,
    LogTraces,
    round_robin,
)
from braintrust_migrate.sandbox.seed.events_ops import DatasetVersionMarker, EventRowsMarker
from braintrust_migrate.sandbox.seed.plan import PROFILES, Ref, build_plan

SPAN_TYPES = {"llm", "score", "function", "eval", "task", "tool", "automation", "facet", "preprocessor"}


def _generators(
    profile: str, seed: int, rows: int, *, upload: bool = False
) -> tuple[EventsSpec, list[LogTraces], list[ExperimentTraces], list[DatasetRows]]:
    spec = EventsSpec.from_plan(build_plan(profile, seed), rows)
    att = Attachments(seed, upload)
    dss = {c.key: DatasetRows(seed, c, spec.shapes[c.key]) for c in spec.datasets}
    logs = [LogTraces(seed, c, spec.budget[c.key], att) for c in spec.logs]
    exps = [
        ExperimentTraces(seed, c, spec.budget[c.key], dss.get(c.dataset or ""), f"id-of-{c.dataset}")
        for c in spec.experiments
    ]
    return spec, logs, exps, list(dss.values())


def _all_rows(profile: str, seed: int, rows: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
    _, logs, exps, dss = _generators(profile, seed, rows)
    for gen in [*logs, *exps]:
        for trace in gen:
            for row in trace:
                yield gen.container.kind, gen.container.key, row
    for ds in dss:
        for part in (ds.initial_rows(), ds.later_rows(), ds.round1_rows(), ds.round2_rows()):
            for row in part:
                yield "dataset", ds.container.key, row


def _digest(profile: str, seed: int, rows: int) -> str:
    h = hashlib.sha256()
    for kind, key, row in _all_rows(profile, seed, rows):
        h.update(kind.encode() + key.encode() + orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


# --------------------------------------------------------------------------- the split


@pytest.mark.parametrize("rows", [0, 1, 3, 7, 20, 50, 120, 250, 600, 12_345, 1_000_000])
def test_spec_shares_rows_exactly(rows: int) -> None:
    spec = EventsSpec.from_plan(build_plan("small", 1), rows)
    assert sum(spec.budget.values()) == rows
    for key, shape in spec.shapes.items():
        assert shape.rows == spec.budget[key] and min(dataclasses.astuple(shape)) >= 0
        assert shape.replace1 <= shape.initial and shape.replace2 <= shape.replace1
        assert shape.delete <= shape.later and shape.replace1 + shape.merge <= shape.new
    if rows >= len(spec.datasets):
        assert all(s.initial >= 1 for s in spec.shapes.values()), "every dataset has a version to pin"
    if rows >= 600:
        assert all(s.replace1 and s.merge and s.replace2 and s.delete for s in spec.shapes.values())
        live = spec.live_rows("project_logs") + spec.live_rows("experiment") + spec.live_rows("dataset")
        assert live < rows


def test_spec_follows_the_plan() -> None:
    plan = build_plan("medium", 3)
    spec = EventsSpec.from_plan(plan, 5000)
    kinds = Counter(op.kind for op in plan.ops.values())
    assert len(spec.logs) == kinds["project"] == PROFILES["medium"].projects
    assert len(spec.experiments) == kinds["experiment"] and len(spec.datasets) == kinds["dataset"]
    linked = [c for c in spec.experiments if c.dataset]
    assert linked and all(c.dataset in spec.shapes for c in linked)
    assert any(c.dataset.split(".")[0] != c.key.split(".")[0] for c in linked), "cross-project datasets"


def test_plan_pins_real_dataset_versions() -> None:
    plan = build_plan("small", 5)
    level = {op.key: n for n, ops in enumerate(plan.levels()) for op in ops}
    datasets = [k for k, op in plan.ops.items() if op.kind == "dataset"]
    for ds in datasets:
        events, version = plan.ops[f"{ds}.events"], plan.ops[f"{ds}.version"]
        assert events.body == EventRowsMarker("dataset", ds)
        assert version.body == DatasetVersionMarker(ds)
        assert level[ds] < level[events.key] < level[version.key]
    pinned = 0
    for op in plan.ops.values():
        if op.kind == "experiment" and "dataset_id" in op.body:
            assert op.body["dataset_version"] == Ref(
                f"{op.body['dataset_id'].key}.version", "events.0._xact_id"
            )
            assert level[op.key] > level[f"{op.body['dataset_id'].key}.version"]
            pinned += 1
        if op.kind == "dataset_snapshot":
            assert op.body["xact_id"] == Ref(f"{op.body['dataset_id'].key}.version", "events.0._xact_id")
            pinned += 1
    assert pinned >= 6


# --------------------------------------------------------------------------- determinism


def test_same_seed_profile_and_rows_same_rows() -> None:
    assert _digest("small", 7, 3000) == _digest("small", 7, 3000)
    assert _digest("small", 7, 3000) != _digest("small", 8, 3000)
    assert _digest("small", 7, 3000) != _digest("small", 7, 3001)


def test_ids_are_unique_and_uuid_shaped() -> None:
    ids: dict[str, set[str]] = {}
    spans: dict[str, set[str]] = {}
    for _kind, key, row in _all_rows("small", 2, 20_000):
        if (
            row.get("_is_merge")
            or row.get("_object_delete")
            or (row.get("metadata") or {}).get("revision", 1) > 1
        ):
            continue  # later versions of rows written before
        assert row["id"] not in ids.setdefault(key, set())
        ids[key].add(row["id"])
        assert row["span_id"] not in spans.setdefault(key, set())
        spans[key].add(row["span_id"])
        assert len(row["id"]) == 36 and row["id"][14] == "4" and row["id"].count("-") == 4
    every = set().union(*ids.values())
    assert len(every) == sum(map(len, ids.values())), "ids are unique across containers too"


# --------------------------------------------------------------------------- structure


def _check_trace(trace: list[dict[str, Any]]) -> None:
    root = trace[0]
    assert "span_parents" not in root and root["span_id"] == root["root_span_id"]
    seen = {root["span_id"]}
    for row in trace[1:]:
        assert row["root_span_id"] == root["span_id"]
        (parent,) = row["span_parents"]
        assert parent in seen, "a parent is an earlier span of the same trace"
        seen.add(row["span_id"])
    assert sum(1 for r in trace if not r.get("span_parents")) == 1
    for row in trace:
        assert row["span_attributes"]["type"] in SPAN_TYPES
        m = row["metrics"]
        assert m["start"] <= m["end"]
        assert START_MS <= m["start"] * 1000 < END_MS
        assert abs(datetime.fromisoformat(row["created"]).timestamp() - m["start"]) < 0.002
        if row is not root:
            assert root["metrics"]["start"] <= m["start"] and m["end"] <= root["metrics"]["end"]


def test_traces_are_well_formed() -> None:
    _, logs, exps, _ = _generators("small", 4, 30_000)
    sizes: Counter[int] = Counter()
    types: Counter[str] = Counter()
    for gen in logs:
        for trace in gen:
            _check_trace(trace)
            sizes[len(trace)] += 1
            types.update(r["span_attributes"]["type"] for r in trace)
            # Nested spans: some parent is not the root.
        assert gen.rows == gen.budget
    assert min(sizes) == 1 and max(sizes) == 20
    assert sum(n * c for n, c in sizes.items()) / sum(sizes.values()) > 3
    assert {"llm", "tool", "function", "score", "task"} <= set(types)
    for gen in exps:
        for trace in gen:
            _check_trace(trace)
            root = trace[0]
            assert root["span_attributes"]["type"] == "eval" and root["scores"]
            if gen.dataset is not None:
                origin = root["origin"]
                assert (
                    origin["object_type"] == "dataset"
                    and origin["object_id"] == f"id-of-{gen.container.dataset}"
                )
        assert gen.rows == gen.budget


def test_logs_have_nesting_errors_scores_tags_unicode() -> None:
    _, logs, _, _ = _generators("small", 4, 10_000)
    nested = errors = scored = tagged = unicode_rows = 0
    for gen in logs:
        for trace in gen:
            root_sid = trace[0]["span_id"]
            nested += any(r.get("span_parents", [root_sid])[0] != root_sid for r in trace)
            errors += any("error" in r for r in trace)
            scored += "scores" in trace[0]
            tagged += "tags" in trace[0]
            unicode_rows += any(not orjson.dumps(r).isascii() for r in trace)
    assert nested > 50 and errors > 20 and scored > 100 and tagged > 50 and unicode_rows > 200


def test_sizes_average_about_a_kibibyte_with_a_few_large_rows() -> None:
    sizes = [len(orjson.dumps(row)) for _, _, row in _all_rows("small", 3, 40_000)]
    large = [s for s in sizes if s > 100 * 1024]
    assert 800 <= sum(sizes) / len(sizes) <= 1400, sum(sizes) / len(sizes)
    assert 5 <= len(large) <= len(sizes) / 500
    assert max(large) < 450 * 1024
    small = [s for s in sizes if s <= 100 * 1024]
    assert 600 <= sum(small) / len(small) <= 1200


def test_created_spread_over_the_year() -> None:
    months: dict[str, set[str]] = {}
    for kind, _key, row in _all_rows("small", 6, 6000):
        if "created" in row:
            created = row["created"]
            assert created.startswith("2025-") and created.endswith("Z")
            months.setdefault(kind, set()).add(created[:7])
    assert len(months["project_logs"]) == 12 and len(months["dataset"]) >= 10
    assert len(months["experiment"]) >= 3  # each experiment on its own day


# --------------------------------------------------------------------------- datasets


def test_dataset_rounds_touch_the_right_rows() -> None:
    spec, _, _, dss = _generators("small", 9, 20_000)
    for ds in dss:
        s = ds.shape
        r1 = list(ds.replaced_indexes(1))
        r2 = list(ds.replaced_indexes(2))
        merged = list(ds.merged_indexes())
        deleted = list(ds.deleted_indexes())
        assert len(r1) == s.replace1 == len(set(r1)) and len(merged) == s.merge == len(set(merged))
        assert len(deleted) == s.delete == len(set(deleted))
        assert not set(r1) & set(merged), "round 1 touches each row once"
        assert set(r2) <= set(r1) and len(r2) == s.replace2, "updated several times"
        assert all(i < s.initial for i in r1) and all(s.initial <= i < s.new for i in deleted)
        assert not set(r2) & set(deleted)
        rows = list(ds.round1_rows())
        assert sum(1 for r in rows if r.get("_is_merge")) == s.merge
        assert all(r["metadata"]["revision"] == 2 for r in rows if not r.get("_is_merge"))
        rows2 = list(ds.round2_rows())
        assert sum(1 for r in rows2 if r.get("_object_delete")) == s.delete
        commented = {item["id"] for item in ds.feedback()}
        assert commented and commented <= {ds.row_id(i) for i in range(s.initial)}
        assert len(list(ds.feedback())) == ds.comment_count()
    assert sum(s.live for s in spec.shapes.values()) == spec.live_rows("dataset")


def test_experiment_rows_reuse_dataset_inputs() -> None:
    _, _, exps, dss = _generators("small", 9, 5000)
    by_key = {d.container.key: d for d in dss}
    checked = 0
    for gen in exps:
        if gen.dataset is None:
            continue
        ds = by_key[gen.container.dataset]
        ids = {ds.row_id(i): i for i in range(ds.shape.initial)}
        for trace in gen:
            root = trace[0]
            idx = ids[root["origin"]["id"]]
            assert root["input"] == ds.input(idx) and root["expected"] == ds.expected(idx)
            checked += 1
    assert checked > 100


def test_upload_mode_lists_attachments_to_upload() -> None:
    _, logs, _, _ = _generators("small", 1, 12_000, upload=True)
    refs = []
    for gen in logs:
        for trace in gen:
            for row in trace:
                inp = row.get("input")
                if isinstance(inp, dict) and "attachment" in inp:
                    refs.append(inp["attachment"])
    pending = logs[0].attachments.pending
    assert refs and len(refs) == len(pending)
    assert {r["key"] for r in refs} == {p.key for p in pending}
    assert all(r["type"] == "braintrust_attachment" for r in refs)
    assert all(p.payload() for p in pending)
    assert {p.content_type for p in pending} >= {"image/png"}


# --------------------------------------------------------------------------- speed and memory


def _drain(rows: int) -> tuple[int, int]:
    spec, logs, exps, dss = _generators("small", 1, rows)
    count = size = 0
    dumps = orjson.dumps
    streams: list[Iterator[list[dict[str, Any]]]] = [iter(g) for g in [*logs, *exps]]
    for trace in round_robin(streams):
        for row in trace:
            size += len(dumps(row))
            count += 1
    for d in dss:
        for part in (d.initial_rows(), d.later_rows(), d.round1_rows(), d.round2_rows()):
            for row in part:
                size += len(dumps(row))
                count += 1
    assert count == spec.rows
    return count, size


def test_generation_is_fast() -> None:
    started = time.perf_counter()
    count, _ = _drain(60_000)
    rate = count / (time.perf_counter() - started)
    assert rate >= 20_000, f"{rate:.0f} rows/s"


def test_generating_200k_rows_keeps_memory_bounded() -> None:
    # Python 3.11's tracemalloc looks up the line number of every allocation by scanning the
    # code object's line table unless the line array exists, which tracing creates: warm the
    # generator's code objects under a no-op trace function so the measurement takes seconds,
    # not tens of seconds. (A tracer that is already on, e.g. coverage, is kept.)
    previous = sys.gettrace()
    sys.settrace(previous or (lambda *_: None))
    try:
        _drain(3000)
    finally:
        sys.settrace(previous)
    tracemalloc.start()
    try:
        _drain(20_000)
        small_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        count, size = _drain(200_000)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000 and size > 150 * 1024 * 1024
    # ~190 MiB of JSON went through; memory stays at a few traces (the large documents are slices).
    assert peak < 8 * 1024 * 1024, peak
    assert peak < small_peak + 2 * 1024 * 1024, (small_peak, peak)
    assert after - before < 256 * 1024, "nothing accumulates"
