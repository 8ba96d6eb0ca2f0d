"""`migrate --dry-run` on a fresh, a half-migrated and a fully migrated destination: exit 0, no
write to either org nor to the state, every object planned, and a row plan per container. Judged
by the sandbox's write counter, the state db's content and plain HTTP/BTQL against the source."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from braintrust_migrate.btql import Query
from tests.integration.engine import cli_run
from tests.integration.engine.harness import migrate, seed, snapshot

# Types listed by `snapshot` whose every source object must be in the plan (ACLs have no stable id there).
PLANNED_TYPES = ("projects", "datasets", "experiments", "prompts", "functions", "views", "dataset_snapshots")


def dry_run(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = cli_run.run(env, "--dry-run", *args)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    path = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("report: "))
    report = orjson.loads(Path(path).read_bytes())
    assert report["dry_run"] is True
    return report


def report_path(state_dir: Path) -> Path:
    """The newest dry-run report under a state dir."""
    return max(state_dir.rglob("migration_report.json"), key=lambda p: p.stat().st_mtime)


def source_rows(url: str, org: Any, kind: str, container_id: str) -> int:
    """Distinct row ids in the container, read over plain BTQL (not the tool's count)."""
    with cli_run.http(url, org) as client:
        query = Query(kind, [container_id], select=["id"], limit=100000)
        data = client.post("/btql", json=query.body()).raise_for_status().json()["data"]
    return len({row["id"] for row in data})


def state_rows(state_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the pair's state db (one pair folder per test)."""
    (db_path,) = state_dir.glob("*/state.db")
    db = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        db.close()


def containers(url: str, org: Any) -> dict[str, tuple[str, str]]:
    """Source container id -> (row type in the report, BTQL kind)."""
    data = snapshot(url, org)
    found = {d["id"]: ("dataset_rows", "dataset") for d in data["datasets"]}
    found.update({e["id"]: ("experiment_rows", "experiment") for e in data["experiments"]})
    found.update({p["id"]: ("logs", "project_logs") for p in data["projects"]})
    return found


def assert_plan_rows(report: dict[str, Any], url: str, org: Any, expect: dict[str, str]) -> None:
    """One row-plan entry per source container of the types in `expect`, counts as BTQL says."""
    plan = report["events"]["plan"]["containers"]
    wanted = {cid: kinds for cid, kinds in containers(url, org).items() if kinds[0] in expect}
    assert sorted(c["source_id"] for c in plan) == sorted(wanted)
    for entry in plan:
        row_type, kind = wanted[entry["source_id"]]
        assert entry["type"] == row_type
        total = source_rows(url, org, kind, entry["source_id"])
        assert entry["rows_total"] == total, entry
        if expect[row_type] == "copied":
            assert (entry["rows_to_copy"], entry["already_copied"]) == (0, total), entry
        else:
            assert (entry["rows_to_copy"], entry["already_copied"]) == (total, 0), entry
            assert (entry["bytes_estimate"] > 0) == (total > 0), entry
    totals = report["events"]["plan"]["totals"]
    assert set(totals) == {row_type for row_type, _ in wanted.values()}
    assert sum(t["rows_total"] for t in totals.values()) == sum(c["rows_total"] for c in plan)


def assert_every_object_planned(report: dict[str, Any], url: str, org: Any) -> None:
    planned = {(o["type"], o["source_id"]): o for o in report["objects"]}
    source = snapshot(url, org)
    for name in PLANNED_TYPES:
        for obj in source[name]:
            outcome = planned.get((name, obj["id"]))
            assert outcome is not None, f"{name} {obj.get('name')} missing from the plan"
            assert outcome["action"] != "failed", outcome
            if outcome["action"] in ("skipped", "conflict"):
                assert outcome.get("reason"), outcome


async def test_dry_run_on_a_fresh_destination_plans_everything_and_writes_nothing(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    before = sandbox_server.write_count(src.api_key), sandbox_server.write_count(dst.api_key)
    report = dry_run(cli_run.cli_env(url, src, dst, tmp_path))
    assert (sandbox_server.write_count(src.api_key), sandbox_server.write_count(dst.api_key)) == before
    assert report["failed"] == 0 and not report["errors"]
    assert_every_object_planned(report, url, src)
    snapshots = [o for o in report["objects"] if o["type"] == "dataset_snapshots"]
    assert snapshots and all(o["action"] == "created" for o in snapshots), snapshots
    # Views of objects the dry run would create are planned, not looked up with a placeholder id.
    views = [o for o in report["objects"] if o["type"] == "views"]
    assert views and {o["action"] for o in views} == {"created"}
    assert_plan_rows(report, url, src, {"dataset_rows": "copy", "experiment_rows": "copy", "logs": "copy"})
    state = state_rows(tmp_path)
    assert state["runs"] == [] and state["outcomes"] == []  # a dry run records nothing


async def test_dry_run_on_a_half_migrated_destination_sees_what_is_there(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    first = await migrate(url, src, dst, tmp_path, migration_resources="projects,datasets")
    assert first.ok
    state_before = state_rows(tmp_path)
    before = sandbox_server.write_count(src.api_key), sandbox_server.write_count(dst.api_key)
    report = dry_run(cli_run.cli_env(url, src, dst, tmp_path))
    assert (sandbox_server.write_count(src.api_key), sandbox_server.write_count(dst.api_key)) == before
    assert state_rows(tmp_path) == state_before
    assert report["failed"] == 0
    assert_every_object_planned(report, url, src)
    assert {o["action"] for o in report["objects"] if o["type"] == "datasets"} == {"unchanged"}
    assert {o["action"] for o in report["objects"] if o["type"] == "experiments"} == {"created"}
    assert_plan_rows(report, url, src, {"dataset_rows": "copied", "experiment_rows": "copy", "logs": "copy"})


async def test_dry_run_on_a_fully_migrated_destination_plans_nothing_to_copy(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    assert (await migrate(url, src, dst, tmp_path)).ok
    state_before = state_rows(tmp_path)
    before = sandbox_server.write_count(src.api_key), sandbox_server.write_count(dst.api_key)
    report = dry_run(cli_run.cli_env(url, src, dst, tmp_path))
    assert (sandbox_server.write_count(src.api_key), sandbox_server.write_count(dst.api_key)) == before
    assert state_rows(tmp_path) == state_before
    assert report["failed"] == 0
    assert_every_object_planned(report, url, src)
    assert {o["action"] for o in report["objects"]} <= {"unchanged", "skipped", "conflict"}
    assert_plan_rows(
        report, url, src, {"dataset_rows": "copied", "experiment_rows": "copied", "logs": "copied"}
    )


async def test_dry_run_of_logs_alone_shows_the_row_plan(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    before = sandbox_server.write_count(dst.api_key)
    report = dry_run(cli_run.cli_env(url, src, dst, tmp_path), "--resources", "logs")
    assert sandbox_server.write_count(dst.api_key) == before
    assert_plan_rows(report, url, src, {"logs": "copy"})
    to_copy = report["events"]["plan"]["totals"]["logs"]["rows_to_copy"]
    assert to_copy > 0
    summary = (Path(report_path(tmp_path)).parent / "migration_summary.txt").read_text(encoding="utf-8")
    [line] = [line for line in summary.splitlines() if line.startswith("logs ")]
    assert line.split()[3] == str(to_copy)  # the text summary shows the plan too
