"""`migrate --shard I/N`: the object phase once, then N shard processes at once, then a plain
run: the destination equals the source (independent oracle) and what one run gives; every
container copied by exactly one shard; a shard killed with -9 and re-run resumes exactly."""

from __future__ import annotations

import fcntl
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest

from braintrust_migrate.btql import Query
from braintrust_migrate.sandbox.faults import FaultSettings
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from tests.integration.engine import cli_run
from tests.integration.engine.harness import list_all, seed, snapshot
from tests.integration.engine.shard_run import MAP_USERS, pair, run_ok, shard_reports, shards_in_parallel
from tests.integration.engine.test_resume_after_kill import canonical
from tests.oracle import compare_orgs

EXTRA_ROWS = 150


def add_rows(url: str, org: SandboxOrg, rows: int = EXTRA_ROWS) -> None:
    """More rows in every dataset and experiment, so each stream takes several batches."""
    with cli_run.http(url, org) as c:
        for kind in ("dataset", "experiment"):
            for obj in list_all(url, org, f"/v1/{kind}"):
                events = [{"id": f"extra-{i}", "input": {"i": i, "pad": "x" * 200}} for i in range(rows)]
                c.post(f"/v1/{kind}/{obj['id']}/insert", json={"events": events}).raise_for_status()


def containers(url: str, org: SandboxOrg) -> set[tuple[str, str]]:
    """Every event container of the org: (stream kind, source id), read over plain HTTP."""
    found = {("dataset", d["id"]) for d in list_all(url, org, "/v1/dataset")}
    found |= {("experiment", e["id"]) for e in list_all(url, org, "/v1/experiment")}
    return found | {("project_logs", p["id"]) for p in list_all(url, org, "/v1/project")}


def row_ids(url: str, org: SandboxOrg, kind: str, object_id: str) -> list[str]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=30) as c:
        query = Query(kind, [object_id], select=["id"], limit=100000)
        return sorted(r["id"] for r in c.post("/btql", json=query.body()).raise_for_status().json()["data"])


@pytest.fixture
async def seeded(sandbox_server, sandbox_orgs):
    url, src = sandbox_server.url, sandbox_orgs.source
    await seed(url, src, "small")
    add_rows(url, src)
    return url, src, sandbox_orgs.dest


async def test_shards_together_equal_the_source_and_one_run(sandbox_server, seeded, tmp_path):
    url, src, dst = seeded
    count = 3  # (2 shards: the kill test below)
    state = tmp_path / "state"
    env = cli_run.cli_env(url, src, dst, state)
    run_ok(env, "--shard", "objects")
    shards_in_parallel(env, count)
    reports = shard_reports(state, src, dst, count)
    run_ok(env)  # the finishing plain run: pinned versions, snapshots
    compare_orgs(url, src.api_key, dst.api_key).assert_equal()
    # It continued from the shards' checkpoints: no row copied again.
    finishing = orjson.loads(
        sorted((pair(state, src, dst) / "runs").glob("*/migration_report.json"))[-1].read_bytes()
    )
    assert finishing["shard"] is None and finishing["events"]["containers"]
    assert sum(c["rows_written"] for c in finishing["events"]["containers"]) == 0

    owners: dict[tuple[str, str], list[int]] = {}
    for index, runs in reports.items():
        assert len(runs) == 1 and runs[0]["shard"] == f"{index}/{count}"
        assert runs[0]["objects"] == []  # a shard writes no object
        for c in runs[0]["events"]["containers"]:
            owners.setdefault((c["container"], c["source_id"]), []).append(index)
    assert set(owners) == containers(url, src)
    assert {key: len(who) for key, who in owners.items() if len(who) != 1} == {}
    assert len({who[0] for who in owners.values()}) == count  # every shard had work

    # The same org in one plain run: the same destination content.
    emails = [u["email"] for u in list_all(url, dst, "/v1/user")]
    one_run = sandbox_server.create_org(f"one-run-{time.time_ns()}", users=emails)
    run_ok(cli_run.cli_env(url, src, one_run, tmp_path / "one"))
    compare_orgs(url, src.api_key, one_run.api_key).assert_equal()
    assert content(url, dst) == content(url, one_run)


def content(url: str, org: SandboxOrg) -> dict[str, object]:
    """An org's objects (ids as names, versions as '<xact>') and every container's rows by name."""
    users = list_all(url, org, "/v1/user")
    objects = {k: v for k, v in canonical(snapshot(url, org), users).items() if k != "acls"}
    projects = {p["id"]: p["name"] for p in list_all(url, org, "/v1/project")}
    rows: dict[str, object] = {}
    with cli_run.http(url, org) as c:
        for kind, path in (
            ("dataset", "/v1/dataset"),
            ("experiment", "/v1/experiment"),
            ("project_logs", None),
        ):
            owners = (
                [{"id": pid, "name": name, "project_id": pid} for pid, name in projects.items()]
                if path is None
                else list_all(url, org, path)
            )
            for obj in owners:
                query = Query(kind, [obj["id"]], limit=100000)
                data = c.post("/btql", json=query.body()).raise_for_status().json()["data"]
                kept = sorted(
                    repr([r.get(f) for f in ("id", "input", "expected", "output", "metadata", "tags")])
                    for r in data
                )
                rows[f"{kind}:{projects.get(obj['project_id'])}/{obj['name']}"] = kept
    return {"objects": objects, "rows": rows}


def _rows_written(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return int(con.execute("SELECT COALESCE(SUM(rows_written), 0) FROM streams").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


async def test_a_shard_killed_mid_run_resumes_from_its_checkpoints(sandbox_server, seeded, tmp_path):
    url, src, dst = seeded
    state = tmp_path / "state"
    env = cli_run.cli_env(url, src, dst, state, MIGRATION_INSERT_BATCH_ROWS="20")
    run_ok(env, "--shard", "objects")
    shard_db = pair(state, src, dst) / "shards" / "0-of-2" / "state.db"
    sandbox_server.set_faults(
        FaultSettings(latency_ms=30), org=dst.name
    )  # slow the writes: a kill lands mid-run
    try:
        other = cli_run.start(env, MAP_USERS, "--shard", "1/2")
        victim = cli_run.start(env, MAP_USERS, "--shard", "0/2")
        deadline = time.monotonic() + 60
        while _rows_written(shard_db) < 40 and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert victim.poll() is None, "shard 0 finished before the kill: nothing was tested"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        killed_at = _rows_written(shard_db)
        assert killed_at >= 40
        _, err = other.communicate(timeout=120)
        assert other.returncode == 0, err[-3000:]
    finally:
        sandbox_server.clear_faults()
    again = run_ok(env, "--shard", "0/2")
    assert again.returncode == 0
    resumed = shard_reports(state, src, dst, 2)[0]
    assert len(resumed) == 1 and resumed[0]["resumed"] is True  # the same run, continued
    run_ok(env)
    compare_orgs(url, src.api_key, dst.api_key).assert_equal()  # rows and comments: none doubled
    for kind, object_id in sorted(containers(url, src)):
        if kind == "project_logs":
            continue
        dest = list_all(url, dst, f"/v1/{kind}")
        name = next(o["name"] for o in list_all(url, src, f"/v1/{kind}") if o["id"] == object_id)
        dest_id = next(o["id"] for o in dest if o["name"] == name)
        got = row_ids(url, dst, kind, dest_id)
        assert got == row_ids(url, src, kind, object_id) and len(got) == len(set(got))


async def test_a_shard_refuses_before_the_object_phase(sandbox_server, seeded, tmp_path):
    url, src, dst = seeded
    done = cli_run.run(cli_run.cli_env(url, src, dst, tmp_path / "state"), "--shard", "0/2")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--shard objects" in lines[0], done.stderr
    assert list_all(url, dst, "/v1/project") == []


def test_the_pair_and_its_shards_exclude_each_other(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    cli_run.seed_small(url, src, rows=5)
    env = cli_run.cli_env(url, src, dst, tmp_path / "state")
    run_ok(env, "--shard", "objects")
    with (pair(tmp_path / "state", src, dst) / "state.lock").open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # what a running shard holds
        done = cli_run.run(env, MAP_USERS)
        assert done.returncode == 2 and "--shard I/N" in done.stderr, done.stderr
        fcntl.flock(held, fcntl.LOCK_UN)
        fcntl.flock(held, fcntl.LOCK_EX)  # what a plain run holds
        done = cli_run.run(env, MAP_USERS, "--shard", "0/2")
        assert done.returncode == 2 and "is using the state" in done.stderr, done.stderr
