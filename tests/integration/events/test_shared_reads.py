"""Small containers copied through shared reads (one BTQL query for many, the cross-object
insert): every row and comment lands exactly once, far fewer requests than one stream per
container, and each container keeps its own checkpoint (a failure in one holds only that one)."""

from __future__ import annotations

import sqlite3

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.harness import migrate
from tests.integration.events.helpers import all_rows, client, comment_texts, comparable, feedback, insert

SMALL, ROWS_EACH, BIG = 30, 7, 1500


def small_org(url, org) -> dict[str, str]:
    """Experiment name -> id: SMALL experiments of ROWS_EACH rows (every third row commented),
    one of BIG rows, one empty; and four small datasets."""
    ids = {}
    with client(url, org) as c:
        project = c.post("/v1/project", json={"name": "Many"}).json()["id"]
        for n in range(SMALL):
            ids[f"e{n}"] = c.post("/v1/experiment", json={"project_id": project, "name": f"e{n}"}).json()[
                "id"
            ]
        ids["big"] = c.post("/v1/experiment", json={"project_id": project, "name": "big"}).json()["id"]
        ids["empty"] = c.post("/v1/experiment", json={"project_id": project, "name": "empty"}).json()["id"]
        for n in range(4):
            ids[f"d{n}"] = c.post("/v1/dataset", json={"project_id": project, "name": f"d{n}"}).json()["id"]
    for n in range(SMALL):
        rows = [
            {"id": f"e{n}-{i}", "input": {"n": n, "i": i}, "scores": {"s": i / 10}} for i in range(ROWS_EACH)
        ]
        insert(url, org, "experiment", ids[f"e{n}"], rows)
        feedback(
            url,
            org,
            "experiment",
            ids[f"e{n}"],
            [{"id": f"e{n}-{i}", "comment": f"c{n}-{i}"} for i in range(0, ROWS_EACH, 3)],
        )
    insert(url, org, "experiment", ids["big"], [{"id": f"b-{i}", "input": i} for i in range(BIG)])
    for n in range(4):
        insert(
            url,
            org,
            "dataset",
            ids[f"d{n}"],
            [{"id": f"d{n}-{i}", "input": i, "expected": -i} for i in range(3)],
        )
    return ids


def dest_ids(url, org) -> dict[str, str]:
    with client(url, org) as c:
        found = {e["name"]: e["id"] for e in c.get("/v1/experiment").json()["objects"]}
        found |= {d["name"]: d["id"] for d in c.get("/v1/dataset").json()["objects"]}
    return found


def assert_same_rows(url, src, dst, ids) -> dict[str, dict[str, dict]]:
    """Every container's rows and comments in the destination equal the source's (by BTQL)."""
    there = dest_ids(url, dst)
    copied = {}
    for name, src_id in ids.items():
        kind = "dataset" if name.startswith("d") else "experiment"
        source, dest = all_rows(url, src, kind, src_id), all_rows(url, dst, kind, there[name])
        assert set(dest) == set(source), name
        for row_id, row in source.items():
            assert comparable(dest[row_id]) == comparable(row), row_id
            assert comment_texts(dest[row_id]) == comment_texts(row), row_id
        copied[name] = dest
    return copied


def source_btql_requests(server, src) -> int:
    return server.fault_stats(src.name).requests


async def test_small_containers_share_reads_and_every_row_lands_once(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    ids = small_org(url, src)
    alone_dest = sandbox_server.create_org(f"{dst.name}-alone")

    sandbox_server.set_faults(FaultSettings(include_paths=("/btql",)), org=src.name)  # counts only
    result = await migrate(url, src, dst, tmp_path / "shared")
    shared_reads = source_btql_requests(sandbox_server, src)
    sandbox_server.clear_faults()
    assert result.ok, result.summary_path.read_text()
    assert_same_rows(url, src, dst, ids)

    sandbox_server.set_faults(FaultSettings(include_paths=("/btql",)), org=src.name)
    alone = await migrate(url, src, alone_dest, tmp_path / "alone", migration_shared_read_rows=0)
    alone_reads = source_btql_requests(sandbox_server, src)
    sandbox_server.clear_faults()
    assert alone.ok
    # One read (and, with progress shown, one count) per container alone; a handful shared.
    assert alone_reads >= len(ids)
    assert shared_reads * 4 <= alone_reads, (shared_reads, alone_reads)

    containers = {c["name"]: c for c in result.report["events"]["containers"]}
    assert containers["big"]["read_with"] == 0  # more rows than a shared read takes: alone
    assert containers["e0"]["read_with"] > 0 and containers["empty"]["read_with"] > 0
    assert {c["name"]: c["rows_written"] for c in containers.values()} == {
        **{f"e{n}": ROWS_EACH for n in range(SMALL)},
        "big": BIG,
        "empty": 0,
        **{f"d{n}": 3 for n in range(4)},
        "Many": 0,  # the project's own logs
    }
    assert all(c["expected_rows"] == c["rows_written"] for c in containers.values())
    assert sum(c["comments_copied"] for c in containers.values()) == SMALL * 3

    # A re-run reads each container from its own checkpoint: nothing is written again.
    writes = sandbox_server.write_count(dst.api_key)
    again = await migrate(url, src, dst, tmp_path / "shared")
    assert again.ok and sandbox_server.write_count(dst.api_key) == writes


async def test_a_failure_in_one_container_holds_only_its_own_checkpoint(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    ids = small_org(url, src)
    first = await migrate(url, src, dst, tmp_path)
    assert first.ok
    there = dest_ids(url, dst)

    # New rows everywhere; one new row of e1 has a comment, and e1's feedback path fails.
    for n in range(SMALL):
        insert(url, src, "experiment", ids[f"e{n}"], [{"id": f"e{n}-new", "input": "new"}])
    feedback(url, src, "experiment", ids["e1"], [{"id": "e1-new", "comment": "late"}])
    sandbox_server.set_faults(
        FaultSettings(
            error_rate=1.0, error_statuses=(500,), include_paths=(f"/v1/experiment/{there['e1']}/feedback",)
        ),
        org=dst.name,
    )
    second = await migrate(url, src, dst, tmp_path, migration_retry_attempts=0)
    sandbox_server.clear_faults()
    containers = {c["name"]: c for c in second.report["events"]["containers"]}
    assert containers["e1"]["status"] == "failed"
    assert containers["e1"]["read_with"] > 0  # it was read with others, which went on
    assert all(containers[f"e{n}"]["status"] == "done" for n in range(SMALL) if n != 1)
    versions = {
        name: {i: r["_xact_id"] for i, r in rows.items()}
        for name, rows in assert_rows_of(url, dst, there).items()
    }

    # The next run sends e1's held rows again and nobody else's.
    third = await migrate(url, src, dst, tmp_path)
    assert third.ok, third.summary_path.read_text()
    copied = assert_same_rows(url, src, dst, ids)
    for name, rows in copied.items():
        changed = {i for i, r in rows.items() if r["_xact_id"] != versions[name][i]}
        assert changed == ({"e1-new"} if name == "e1" else set()), name
    con = sqlite3.connect(next(tmp_path.glob("*__to__*")) / "state.db")
    statuses = dict(con.execute("SELECT src_id, status FROM streams WHERE kind = 'experiment'"))
    con.close()
    assert set(statuses.values()) == {"done"}


def assert_rows_of(url, org, there) -> dict[str, dict[str, dict]]:
    return {
        name: all_rows(url, org, "dataset" if name.startswith("d") else "experiment", i)
        for name, i in there.items()
    }
