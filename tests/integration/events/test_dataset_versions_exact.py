"""An experiment or snapshot pinned to a dataset version reads, in the destination, exactly
the rows its source pin reads, rows updated or deleted after that version included.

The oracle is plain HTTP: `/fetch` with `version` on both sides (the whole history, newest
first; an id's first sighting is its version as of the pin), never the tool's own reads."""

from __future__ import annotations

from typing import Any

import pytest

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.harness import migrate
from tests.integration.events.helpers import all_rows, client, insert

CONTENT = ("input", "expected", "metadata", "tags")


def rows_at(url: str, org, dataset: str, version: str | None) -> dict[str, dict[str, Any]]:
    """The dataset as of `version` (None: now): id -> its content fields."""
    seen: dict[str, dict[str, Any]] = {}
    cursor = None
    with client(url, org) as c:
        while True:
            body: dict[str, Any] = {"limit": 50}
            if version is not None:
                body["version"] = version
            if cursor:
                body["cursor"] = cursor
            data = c.post(f"/v1/dataset/{dataset}/fetch", json=body).raise_for_status().json()
            for row in data["events"]:
                seen.setdefault(row["id"], {k: row.get(k) for k in CONTENT})
            cursor = data.get("cursor")
            if not data["events"] or not cursor:
                return seen


def newest(url: str, org, dataset: str) -> str:
    return max((r["_xact_id"] for r in all_rows(url, org, "dataset", dataset).values()), key=int)


def build(url: str, org, ids: list[str]) -> dict[str, str]:
    """A dataset, an experiment pinned at V1, then an update, a merge, a deletion and a new
    row, a snapshot at V2, then more changes after V2."""
    a, b, c_, d, e, f = ids[:6]
    with client(url, org) as c:
        project = c.post("/v1/project", json={"name": "Pins"}).raise_for_status().json()
        dataset = c.post("/v1/dataset", json={"project_id": project["id"], "name": "golden"}).json()
    ds = dataset["id"]
    rows = [{"id": i, "input": {"q": f"q {n}"}, "expected": f"a {n}", "metadata": {"n": n}, "tags": ["t"]}
            for n, i in enumerate(ids)]  # fmt: skip
    insert(url, org, "dataset", ds, rows[:4])
    insert(url, org, "dataset", ds, rows[4:])
    v1 = newest(url, org, ds)
    with client(url, org) as c:
        c.post(
            "/v1/experiment",
            json={"project_id": project["id"], "name": "eval at v1", "dataset_id": ds, "dataset_version": v1},
        ).raise_for_status()
    insert(url, org, "dataset", ds, [{"id": a, "input": {"q": "changed"}, "expected": "new answer"}])
    insert(url, org, "dataset", ds, [{"id": b, "_is_merge": True, "metadata": {"reviewed": True}}])
    insert(url, org, "dataset", ds, [{"id": c_, "_object_delete": True}])
    insert(url, org, "dataset", ds, [{"id": "added after v1", "input": {"q": "late"}, "expected": "z"}])
    v2 = newest(url, org, ds)
    with client(url, org) as c:
        c.post(
            "/v1/dataset_snapshot", json={"dataset_id": ds, "name": "v2", "xact_id": v2}
        ).raise_for_status()
    insert(url, org, "dataset", ds, [{"id": d, "expected": "after v2"}, {"id": e, "_object_delete": True}])
    insert(url, org, "dataset", ds, [{"id": f, "_is_merge": True, "tags": ["late"]}])
    return {"project": project["id"], "dataset": ds, "v1": v1, "v2": v2}


def dest_pins(url: str, org) -> tuple[str, dict[str, Any], dict[str, Any]]:
    with client(url, org) as c:
        project = c.get("/v1/project", params={"project_name": "Pins"}).json()["objects"][0]
        dataset = c.get("/v1/dataset", params={"project_id": project["id"]}).json()["objects"][0]
        query = {"project_id": project["id"], "experiment_name": "eval at v1"}
        experiment = c.get("/v1/experiment", params=query).json()["objects"][0]
        snapshot = c.get("/v1/dataset_snapshot", params={"dataset_id": dataset["id"]}).json()["objects"][0]
    return dataset["id"], experiment, snapshot


def assert_pins_exact(url: str, src, dst, source: dict[str, str]) -> None:
    dest_dataset, experiment, snapshot = dest_pins(url, dst)
    assert experiment["dataset_id"] == dest_dataset
    for label, src_pin, dest_pin in (
        ("experiment dataset_version", source["v1"], experiment["dataset_version"]),
        ("snapshot xact_id", source["v2"], snapshot["xact_id"]),
    ):
        assert dest_pin, f"{label} was not translated"
        want = rows_at(url, src, source["dataset"], src_pin)
        got = rows_at(url, dst, dest_dataset, dest_pin)
        assert got == want, f"{label}: missing {set(want) - set(got)}, extra {set(got) - set(want)}"
    assert rows_at(url, dst, dest_dataset, None) == rows_at(url, src, source["dataset"], None)


IDS = [f"row-{n}" for n in range(9)]


async def test_pinned_versions_read_the_same_rows(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    source = build(url, src, IDS)
    # The source pins really differ from each other and from now: the test can see a wrong pin.
    v1, v2, now = (rows_at(url, src, source["dataset"], v) for v in (source["v1"], source["v2"], None))
    assert len({len(v1), len(v2), len(now)}) > 1 and v1 != v2 != now
    result = await migrate(url, src, dst, tmp_path)
    assert result.ok, result.summary_path.read_text()
    assert_pins_exact(url, src, dst, source)

    again = await migrate(url, src, dst, tmp_path)  # a re-run changes nothing a pin reads
    assert again.ok, again.summary_path.read_text()
    assert_pins_exact(url, src, dst, source)


async def test_row_ids_with_quotes(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    ids = ["it's", "o'clock", "back\\slash'", "a' or id != '", "plain", "x''y", "end'"]
    source = build(url, src, ids)
    result = await migrate(url, src, dst, tmp_path)
    assert result.ok, result.summary_path.read_text()
    assert_pins_exact(url, src, dst, source)


async def test_pins_exact_with_batches_landing_out_of_order(sandbox_server, sandbox_orgs, tmp_path):
    """Inserts only (no history to carry): tiny batches and jittery inserts, so that batches
    in flight finish in any order, must not move what a pin reads."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src) as c:
        project = c.post("/v1/project", json={"name": "Pins"}).raise_for_status().json()
        ds = c.post("/v1/dataset", json={"project_id": project["id"], "name": "golden"}).json()["id"]
    pins = []
    for start in range(0, 60, 6):
        insert(url, src, "dataset", ds, [{"id": f"r-{n:02d}", "input": n} for n in range(start, start + 6)])
        if start in (24, 42):
            pins.append(newest(url, src, ds))
    with client(url, src) as c:
        c.post(
            "/v1/experiment",
            json={
                "project_id": project["id"],
                "name": "eval at v1",
                "dataset_id": ds,
                "dataset_version": pins[0],
            },
        ).raise_for_status()
        c.post(
            "/v1/dataset_snapshot", json={"dataset_id": ds, "name": "v2", "xact_id": pins[1]}
        ).raise_for_status()
    sandbox_server.set_faults(
        FaultSettings(latency_ms=1, latency_jitter_ms=40, include_paths=("/v1/dataset",), seed=3),
        org=dst.name,
    )
    try:
        result = await migrate(url, src, dst, tmp_path, migration_insert_batch_rows=2)
    finally:
        sandbox_server.set_faults(None, org=dst.name)
    assert result.ok, result.summary_path.read_text()
    assert_pins_exact(url, src, dst, {"dataset": ds, "v1": pins[0], "v2": pins[1]})


async def test_a_pin_added_after_a_finished_run(sandbox_server, sandbox_orgs, tmp_path):
    """A later run meets a new pin older than the destination's state: still exact."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    source = build(url, src, IDS)
    result = await migrate(url, src, dst, tmp_path)
    assert result.ok, result.summary_path.read_text()
    # A version between v1 and v2: row-0 updated, row-1 not yet merged.
    history = sorted({r["_xact_id"] for r in _history(url, src, source["dataset"])}, key=int)
    middle = next(x for x in history if int(source["v1"]) < int(x) < int(source["v2"]))
    with client(url, src) as c:
        c.post(
            "/v1/experiment",
            json={"project_id": source["project"], "name": "eval mid", "dataset_id": source["dataset"],
                  "dataset_version": middle},
        ).raise_for_status()  # fmt: skip
    again = await migrate(url, src, dst, tmp_path)
    assert again.ok, again.summary_path.read_text()
    with client(url, dst) as c:
        project = c.get("/v1/project", params={"project_name": "Pins"}).json()["objects"][0]
        mid = c.get("/v1/experiment", params={"project_id": project["id"], "experiment_name": "eval mid"})
    dest_dataset, _, _ = dest_pins(url, dst)
    pinned = mid.json()["objects"][0]["dataset_version"]
    assert rows_at(url, dst, dest_dataset, pinned) == rows_at(url, src, source["dataset"], middle)
    assert_pins_exact(url, src, dst, source)


def _history(url: str, org, dataset: str) -> list[dict[str, Any]]:
    with client(url, org) as c:
        return (
            c.post(f"/v1/dataset/{dataset}/fetch", json={"limit": 1000}).raise_for_status().json()["events"]
        )


# Seed 3 fails a deletion of the second pin (the first is written); seed 4 fails after both.
@pytest.mark.parametrize("seed", [3, 4])
async def test_resume_after_a_failed_pin_write(sandbox_server, sandbox_orgs, tmp_path, seed):
    """Inserts that fail (no retries) stop the run among the pins; a plain re-run is still exact."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    source = build(url, src, [f"row-{n}" for n in range(30)])
    faults = FaultSettings(error_rate=0.08, include_paths=("/v1/dataset",), methods=("POST",), seed=seed)
    sandbox_server.set_faults(faults, org=dst.name)
    try:
        first = await migrate(
            url, src, dst, tmp_path, migration_insert_batch_rows=3, migration_retry_attempts=0
        )
    finally:
        sandbox_server.set_faults(None, org=dst.name)
    assert not first.ok, "no write failed: nothing was resumed"
    again = await migrate(url, src, dst, tmp_path)
    assert again.ok, again.summary_path.read_text()
    assert_pins_exact(url, src, dst, source)
