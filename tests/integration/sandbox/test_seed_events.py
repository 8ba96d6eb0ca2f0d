"""The seed's events phase against the sandbox, over HTTP: what was written reads back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from braintrust_migrate.sandbox.faults import FaultSettings
from braintrust_migrate.sandbox.seed.events import EventsPhase
from braintrust_migrate.sandbox.seed.events_gen import DEFAULT_ROWS, DatasetRows, EventsSpec
from braintrust_migrate.sandbox.seed.run import SeedResult, build_plan, seed_org, seed_org_sync

pytestmark = pytest.mark.timeout(120)

SEED = 7


@dataclass
class Seeded:
    result: SeedResult
    http: httpx.Client
    spec: EventsSpec

    def id_of(self, key: str) -> str:
        return self.result.objects[key].id

    def btql(self, query: str, **options: Any) -> list[dict[str, Any]]:
        resp = self.http.post("/btql", json={"query": query, "fmt": "json", **options})
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]

    def rows(self, kind: str, ids: list[str], **options: Any) -> list[dict[str, Any]]:
        """Every live row of the containers, through BTQL keyset pages."""
        source = f"{kind}({', '.join(repr(i) for i in ids)}) spans"
        out: list[dict[str, Any]] = []
        after = ""
        while True:
            where = f"\nfilter: _pagination_key > '{after}'" if after else ""
            page = self.btql(
                f"select: *\nfrom: {source}{where}\nsort: _pagination_key asc\nlimit: 1000", **options
            )
            out += page
            if len(page) < 1000:
                return out
            after = page[-1]["_pagination_key"]

    def count(self, kind: str, ids: list[str], where: str = "", **options: Any) -> int:
        source = f"{kind}({', '.join(repr(i) for i in ids)}) spans"
        data = self.btql(
            f"measures: count(1) as n\nfrom: {source}" + (f"\nfilter: {where}" if where else ""), **options
        )
        return data[0]["n"] if data else 0

    def container_ids(self, kind: str) -> list[str]:
        group = {
            "project_logs": self.spec.logs,
            "experiment": self.spec.experiments,
            "dataset": self.spec.datasets,
        }
        return [self.id_of(c.key) for c in group[kind]]


@pytest.fixture(scope="module")
def seeded(sandbox_server: Any) -> Iterator[Seeded]:
    org = sandbox_server.create_org(f"seed-events-{uuid.uuid4().hex[:8]}")
    result = seed_org_sync(sandbox_server.url, org.api_key, profile="small", seed=SEED)
    http = httpx.Client(
        base_url=sandbox_server.url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=60
    )
    spec = EventsSpec.from_plan(build_plan("small", SEED), result.rows)
    yield Seeded(result, http, spec)
    http.close()


# --------------------------------------------------------------------------- counts


def test_small_profile_writes_hundreds_of_rows(seeded: Seeded) -> None:
    res = seeded.result
    assert res.rows == DEFAULT_ROWS["small"] == res.event_rows
    assert set(res.events) == {"project_logs", "experiment", "dataset"}
    for kind, counts in res.events.items():
        assert counts.rows > 0 and counts.live > 0 and counts.comments > 0, kind
        assert counts.containers == len(seeded.container_ids(kind))
    assert res.events["dataset"].live < res.events["dataset"].rows  # replacements, merges, deletes
    assert res.attachments >= 2
    assert res.notes == []


def test_live_counts_read_back(seeded: Seeded) -> None:
    for kind, counts in seeded.result.events.items():
        ids = seeded.container_ids(kind)
        assert seeded.count(kind, ids) == counts.live, kind
        for cid, live in counts.live_by_container.items():
            assert seeded.count(kind, [cid]) == live, (kind, cid)


def test_comments_are_on_the_rows(seeded: Seeded) -> None:
    for kind, counts in seeded.result.events.items():
        rows = seeded.rows(kind, seeded.container_ids(kind))
        comments = [c for r in rows for c in r.get("comments") or []]
        assert len(comments) == counts.comments, kind
        assert all(c.get("text") or c.get("comment") for c in comments), comments[:2]
        commented = [r for r in rows if r.get("comments")]
        assert any(len(r["comments"]) > 1 for r in commented) or kind == "dataset"
        if kind != "dataset":
            assert all(r.get("is_root") for r in commented), "comments go on root spans"


# --------------------------------------------------------------------------- datasets


def test_dataset_rows_are_replaced_merged_and_deleted(seeded: Seeded) -> None:
    checked = Counter()
    for c in seeded.spec.datasets:
        ds = DatasetRows(SEED, c, seeded.spec.shapes[c.key])
        rows = {r["id"]: r for r in seeded.rows("dataset", [seeded.id_of(c.key)])}
        shape = ds.shape
        assert len(rows) == shape.live
        deleted = {ds.row_id(i) for i in ds.deleted_indexes()}
        assert not deleted & set(rows)
        twice = set(ds.replaced_indexes(2))
        once = set(ds.replaced_indexes(1)) - twice
        merged = set(ds.merged_indexes())
        for idx in range(shape.new):
            row = rows.get(ds.row_id(idx))
            if row is None:
                assert ds.row_id(idx) in deleted
                continue
            revision = 3 if idx in twice else 2 if idx in once else 1
            want = ds.row(idx, revision)
            assert row["input"] == want["input"] and row["expected"] == want["expected"], idx
            assert row.get("tags") == want.get("tags")
            meta = row["metadata"]
            if idx in merged:
                assert meta["reviewed"] is True and meta["reviewer"].startswith("reviewer-")
                meta = {k: v for k, v in meta.items() if k not in ("reviewed", "reviewer", "review_score")}
                checked["merged"] += 1
            assert meta == want["metadata"], idx
            assert row["created"][:19] == want["created"][:19]
            assert row["span_id"] == want["span_id"] == row["root_span_id"]
            checked[revision] += 1
    assert checked[1] and checked[2] and checked[3] and checked["merged"], checked


def test_experiments_and_snapshots_pin_real_dataset_versions(seeded: Seeded) -> None:
    pins = 0
    for key, obj in seeded.result.objects.items():
        if obj.kind not in ("experiment", "dataset_snapshot"):
            continue
        path = "/v1/experiment/" if obj.kind == "experiment" else "/v1/dataset_snapshot/"
        body = seeded.http.get(path + obj.id).raise_for_status().json()
        version = body.get("dataset_version") if obj.kind == "experiment" else body["xact_id"]
        if not body.get("dataset_id") or version is None:
            continue
        ds_key = next(k for k, o in seeded.result.objects.items() if o.id == body["dataset_id"])
        shape = seeded.spec.shapes[ds_key]
        # As of the pinned version the dataset holds exactly its initial rows.
        assert seeded.count("dataset", [body["dataset_id"]], version=version) == shape.initial, key
        assert seeded.count("dataset", [body["dataset_id"]]) == shape.live
        pins += 1
    assert pins >= 5


def test_experiment_rows_originate_from_live_dataset_rows(seeded: Seeded) -> None:
    ds_ids = seeded.container_ids("dataset")
    live = {(r["dataset_id"], r["id"]) for r in seeded.rows("dataset", ds_ids)}
    seen_at: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def as_of(ds_id: str, xact: str) -> set[tuple[str, str]]:
        """(row id, _xact_id) of the dataset as it was at `xact` (fetch serves live rows only)."""
        if (ds_id, xact) not in seen_at:
            body = {"version": xact, "limit": 1000}
            events = seeded.http.post(f"/v1/dataset/{ds_id}/fetch", json=body).raise_for_status().json()
            seen_at[(ds_id, xact)] = {(e["id"], e["_xact_id"]) for e in events["events"]}
        return seen_at[(ds_id, xact)]

    rows = seeded.rows("experiment", seeded.container_ids("experiment"))
    origins = [r["origin"] for r in rows if r.get("origin")]
    assert len(origins) > 20
    with_xact = 0
    for origin in origins:
        assert origin["object_type"] == "dataset"
        assert (origin["object_id"], origin["id"]) in live
        if origin.get("_xact_id"):
            assert (origin["id"], origin["_xact_id"]) in as_of(origin["object_id"], origin["_xact_id"])
            with_xact += 1
    assert with_xact > 0
    roots = [r for r in rows if r.get("is_root")]
    assert all(r["scores"] and r["span_attributes"]["type"] == "eval" for r in roots)


# --------------------------------------------------------------------------- logs


def test_log_traces_read_back_whole(seeded: Seeded) -> None:
    rows = seeded.rows("project_logs", seeded.container_ids("project_logs"))
    traces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        traces[row["root_span_id"]].append(row)
    assert len(traces) > 30
    for root_span_id, spans in traces.items():
        roots = [s for s in spans if not s.get("span_parents")]
        assert len(roots) == 1 and roots[0]["span_id"] == root_span_id and roots[0]["is_root"]
        span_ids = {s["span_id"] for s in spans}
        assert all(set(s.get("span_parents") or []) <= span_ids for s in spans)
    assert max(map(len, traces.values())) > 5
    assert any("error" in r and r["error"] for r in rows)
    assert any(len(json.dumps(r)) > 100_000 for r in rows)


def test_created_windows_select_subsets(seeded: Seeded) -> None:
    ids = seeded.container_ids("project_logs")
    total = seeded.result.events["project_logs"].live
    spring = seeded.count(
        "project_logs", ids, "created >= '2025-03-01T00:00:00Z' and created < '2025-06-01T00:00:00Z'"
    )
    assert 0.15 * total < spring < 0.35 * total
    assert seeded.count("project_logs", ids, "created < '2025-01-01T00:00:00Z'") == 0
    assert seeded.count("project_logs", ids, "created >= '2026-01-01T00:00:00Z'") == 0


def test_attachments_were_uploaded(seeded: Seeded) -> None:
    rows = seeded.rows("project_logs", seeded.container_ids("project_logs"))
    refs = [
        r["input"]["attachment"]
        for r in rows
        if isinstance(r.get("input"), dict) and "attachment" in r["input"]
    ]
    assert len(refs) == seeded.result.attachments >= 2
    for ref in refs:
        assert ref["type"] == "braintrust_attachment"
        params = {
            "key": ref["key"],
            "filename": ref["filename"],
            "content_type": ref["content_type"],
            "org_id": seeded.result.org_id,
        }
        meta = seeded.http.get("/attachment", params=params).raise_for_status().json()
        data = httpx.get(meta["downloadUrl"], timeout=30).raise_for_status().content
        assert data and meta["status"]["upload_status"] == "done"
        if ref["content_type"] == "image/png":
            assert data.startswith(b"\x89PNG")


# --------------------------------------------------------------------------- determinism and options


def _normalized(seeded: Seeded) -> list[str]:
    """Rows without what the server assigns (xacts, pagination keys, container ids, audit)."""
    labels = {obj.id: key for key, obj in seeded.result.objects.items()}
    drop = {"_xact_id", "_pagination_key", "comments", "audit_data", "org_id", "project_id"}
    drop |= {"experiment_id", "dataset_id", "log_id", "created_at"}
    out = []
    for kind in ("project_logs", "experiment", "dataset"):
        for row in seeded.rows(kind, seeded.container_ids(kind)):
            clean = {k: v for k, v in row.items() if k not in drop}
            if isinstance(clean.get("origin"), dict):
                clean["origin"] = {**clean["origin"], "object_id": labels[clean["origin"]["object_id"]]}
                clean["origin"].pop("_xact_id", None)
            out.append(json.dumps(clean, sort_keys=True))
    return sorted(out)


def test_same_seed_same_rows(seeded: Seeded, sandbox_server: Any) -> None:
    org = sandbox_server.create_org(f"seed-events-again-{uuid.uuid4().hex[:8]}")
    again = seed_org_sync(sandbox_server.url, org.api_key, profile="small", seed=SEED)
    http = httpx.Client(
        base_url=sandbox_server.url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=60
    )
    try:
        other = Seeded(again, http, seeded.spec)
        assert _normalized(other) == _normalized(seeded)
        assert {k: (c.rows, c.live, c.comments) for k, c in again.events.items()} == {
            k: (c.rows, c.live, c.comments) for k, c in seeded.result.events.items()
        }
    finally:
        http.close()


async def test_rows_zero_writes_no_events_and_keeps_pins(sandbox_server: Any) -> None:
    org = sandbox_server.create_org(f"seed-events-none-{uuid.uuid4().hex[:8]}")
    result = await seed_org(sandbox_server.url, org.api_key, profile="small", seed=3, rows=0)
    assert result.event_rows == 0 and result.event_requests == 0
    assert all(c.live == 0 for c in result.events.values())
    async with httpx.AsyncClient(
        base_url=sandbox_server.url, headers={"Authorization": f"Bearer {org.api_key}"}
    ) as h:
        exps = (await h.get("/v1/experiment", params={"org_name": org.name})).json()["objects"]
    assert any(e.get("dataset_version") for e in exps)


async def test_a_413_halves_the_batches(sandbox_server: Any) -> None:
    org = sandbox_server.create_org(f"seed-events-413-{uuid.uuid4().hex[:8]}")
    sandbox_server.set_faults(FaultSettings(max_request_bytes=600_000), org=org.name)
    try:
        result = await seed_org(sandbox_server.url, org.api_key, profile="small", seed=4, rows=3000)
    finally:
        sandbox_server.set_faults(None, org=org.name)
    assert result.event_rows == 3000
    assert any("413" in n for n in result.notes), result.notes
    ids = [obj.id for obj in result.objects.values() if obj.kind == "project"]
    with httpx.Client(base_url=sandbox_server.url, headers={"Authorization": f"Bearer {org.api_key}"}) as h:
        src = f"project_logs({', '.join(repr(i) for i in ids)}) spans"
        data = h.post("/btql", json={"query": f"measures: count(1) as n\nfrom: {src}"}).json()["data"]
    assert data[0]["n"] == result.events["project_logs"].live


async def test_a_single_oversized_row_is_an_error(sandbox_server: Any) -> None:
    from braintrust_migrate.sandbox.seed.run import SeedError

    org = sandbox_server.create_org(f"seed-events-big-{uuid.uuid4().hex[:8]}")
    sandbox_server.set_faults(
        FaultSettings(max_request_bytes=100_000, include_paths=("/v1/insert",)), org=org.name
    )
    try:
        with pytest.raises(SeedError, match="413"):
            await seed_org(sandbox_server.url, org.api_key, profile="small", seed=4, rows=3000)
    finally:
        sandbox_server.set_faults(None, org=org.name)


def test_cli_rows_option(sandbox_server: Any) -> None:
    org = sandbox_server.create_org(f"seed-events-cli-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    argv = [sys.executable, "-m", "braintrust_migrate", "sandbox", "seed", "--url", sandbox_server.url]
    argv += ["--api-key", org.api_key, "--seed", "2", "--rows", "250", "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows"] == summary["event_rows"] == 250
    assert sum(k["rows"] for k in summary["events"].values()) == 250
    bad = subprocess.run([*argv[:-3], "--rows", "-5"], capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "--rows" in bad.stderr


def test_plain_output_lists_event_counts(sandbox_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from braintrust_migrate.sandbox.seed.cli import run_seed

    org = sandbox_server.create_org(f"seed-events-out-{uuid.uuid4().hex[:8]}")
    run_seed(sandbox_server.url, org.api_key, "small", "1", "", "4", False, rows="120")
    lines = capsys.readouterr().out.splitlines()
    assert "120 event rows" in lines[0]
    counts = dict(line.split() for line in lines[1:] if line.strip() and not line.startswith("note"))
    assert (
        int(counts["project_logs.rows"]) + int(counts["experiment.rows"]) + int(counts["dataset.rows"]) == 120
    )
    assert int(counts["dataset.live"]) <= int(counts["dataset.rows"])


def test_phase_validates_its_plan() -> None:
    phase = EventsPhase(build_plan("small", 1), 1000)
    assert phase.enabled and sum(phase.spec.budget.values()) == 1000
    assert not EventsPhase(build_plan("small", 1), 0).enabled


# --------------------------------------------------------------------------- the sender alone


def _phase(handler: Any, **kw: Any) -> EventsPhase:
    phase = EventsPhase(build_plan("small", 1), 0, **kw)
    phase.connect("http://sandbox.test", "key", transport=httpx.MockTransport(handler))
    return phase


def _items(n: int) -> Iterator[tuple[str, str, str, list[dict[str, Any]]]]:
    for i in range(0, n, 3):
        cid = f"container-{i % 2}"
        yield (
            "project_logs",
            cid,
            "events",
            [{"id": f"r{j}", "input": "ü" * j} for j in range(i, min(i + 3, n))],
        )


async def test_sender_halves_a_refused_batch_and_delivers_every_row_once() -> None:
    received: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert set(body) == {"project_logs"} and request.headers["content-length"] == str(
            len(request.content)
        )
        rows = {cid: entry["events"] for cid, entry in body["project_logs"].items()}
        if sum(map(len, rows.values())) > 4:
            return httpx.Response(413, text="too large")
        received.extend(r["id"] for events in rows.values() for r in events)
        return httpx.Response(
            200, json={"project_logs": {c: {"row_ids": [r["id"] for r in e]} for c, e in rows.items()}}
        )

    phase = _phase(handler, batch_rows=10, inflight=2)
    try:
        await phase._stream(_items(25))
    finally:
        await phase.aclose()
    assert sorted(received) == sorted(f"r{j}" for j in range(25))
    assert phase.split_413 > 0 and phase.max_rows <= 5 and phase.counts["project_logs"].rows == 25


async def test_sender_refuses_an_answer_with_missing_row_ids() -> None:
    from braintrust_migrate.sandbox.seed.http import SeedHTTPError

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(
            200, json={"project_logs": {c: {"row_ids": ["x"]} for c in body["project_logs"]}}
        )

    phase = _phase(handler)
    try:
        with pytest.raises(SeedHTTPError, match="row_ids for"):
            await phase._stream(_items(9))
    finally:
        await phase.aclose()
