"""--sync-deletes: what the tool made in the destination and the source has since deleted goes;
nothing else does (hand-made objects and rows, adopted objects, runs without the flag). Judged
by id over plain HTTP/BTQL against the sandbox."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson

from braintrust_migrate.btql import Query, any_of
from braintrust_migrate.engine.state import StateStore
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from tests.integration.engine import cli_run
from tests.integration.engine.harness import migrate


def _client(url: str, org: SandboxOrg) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=30)


def _post(c: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return c.post(path, json=body).raise_for_status().json()


def _insert(c: httpx.Client, kind: str, container: str, events: list[dict[str, Any]]) -> None:
    _post(c, f"/v1/{kind}/{container}/insert", {"events": events})


def _prompt(project_id: str, slug: str) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "name": slug,
        "slug": slug,
        "prompt_data": {"prompt": {"type": "chat", "messages": [{"role": "user", "content": slug}]}},
    }


def _seed_source(url: str, src: SandboxOrg) -> dict[str, Any]:
    with _client(url, src) as c:
        p = _post(c, "/v1/project", {"name": "P"})
        q = _post(c, "/v1/project", {"name": "Q"})  # adopted: B has an equal one before the copy
        ids: dict[str, Any] = {"p": p["id"], "q": q["id"]}
        for slug in ("keep-prompt", "gone-prompt"):
            ids[slug] = _post(c, "/v1/prompt", _prompt(p["id"], slug))["id"]
        for name in ("keep-ds", "gone-ds"):
            ids[name] = _post(c, "/v1/dataset", {"name": name, "project_id": p["id"]})["id"]
            _insert(c, "dataset", ids[name], [{"id": f"{name}-{i}", "input": i} for i in range(5)])
        ids["gone-exp"] = _post(c, "/v1/experiment", {"name": "gone-exp", "project_id": p["id"]})["id"]
        _insert(c, "experiment", ids["gone-exp"], [{"id": "e-0", "input": 0, "output": 1}])
        _insert(c, "project_logs", p["id"], [{"id": f"log-{i}", "input": i} for i in range(6)])
    return ids


def _delete_in_source(url: str, src: SandboxOrg, ids: dict[str, Any]) -> None:
    with _client(url, src) as c:
        c.delete(f"/v1/prompt/{ids['gone-prompt']}").raise_for_status()
        c.delete(f"/v1/dataset/{ids['gone-ds']}").raise_for_status()
        c.delete(f"/v1/experiment/{ids['gone-exp']}").raise_for_status()
        c.delete(f"/v1/project/{ids['q']}").raise_for_status()
        _insert(c, "project_logs", ids["p"], [{"id": f"log-{i}", "_object_delete": True} for i in (0, 1)])
        _insert(
            c, "dataset", ids["keep-ds"], [{"id": f"keep-ds-{i}", "_object_delete": True} for i in (3, 4)]
        )


def _by_name(c: httpx.Client, path: str, name: str, **params: str) -> dict[str, Any] | None:
    found = [o for o in c.get(path, params=params).raise_for_status().json()["objects"] if o["name"] == name]
    return found[0] if found else None


def _alive(c: httpx.Client, kind: str, object_id: str) -> bool:
    response = c.get(f"/v1/{kind}/{object_id}")
    return response.status_code == 200 and not response.json().get("deleted_at")


def _row_ids(c: httpx.Client, kind: str, container: str) -> set[str]:
    query = Query(kind, [container], select=["id"], limit=10000)
    return {r["id"] for r in c.post("/btql", json=query.body()).raise_for_status().json()["data"]}


def _snapshot(url: str, org: SandboxOrg) -> dict[str, Any]:
    """Every live object id of the types in play, and every row id per container."""
    with _client(url, org) as c:
        out: dict[str, Any] = {}
        for path in ("/v1/project", "/v1/prompt", "/v1/dataset", "/v1/experiment"):
            out[path] = sorted(o["id"] for o in c.get(path).raise_for_status().json()["objects"])
        for project in out["/v1/project"]:
            out[f"logs:{project}"] = sorted(_row_ids(c, "project_logs", project))
        for kind, path in (("dataset", "/v1/dataset"), ("experiment", "/v1/experiment")):
            for container in out[path]:
                out[f"{kind}:{container}"] = sorted(_row_ids(c, kind, container))
        return out


async def test_sync_deletes_mirrors_only_what_the_tool_made(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    ids = _seed_source(url, src)
    with _client(url, dst) as c:
        pre_q = _post(c, "/v1/project", {"name": "Q"})  # equal to the source's: adopted, not created
    first = await migrate(url, src, dst, tmp_path)
    assert first.ok, first.report["errors"]

    with _client(url, dst) as c:
        d_p = _by_name(c, "/v1/project", "P")
        assert d_p is not None
        d = {
            "gone-prompt": _by_name(c, "/v1/prompt", "gone-prompt", project_id=d_p["id"]),
            "keep-prompt": _by_name(c, "/v1/prompt", "keep-prompt", project_id=d_p["id"]),
            "gone-ds": _by_name(c, "/v1/dataset", "gone-ds", project_id=d_p["id"]),
            "keep-ds": _by_name(c, "/v1/dataset", "keep-ds", project_id=d_p["id"]),
            "gone-exp": _by_name(c, "/v1/experiment", "gone-exp", project_id=d_p["id"]),
        }
        assert all(d.values()), d
        # Made by hand in the destination: the tool never wrote these.
        hand_project = _post(c, "/v1/project", {"name": "Hand"})
        hand_prompt = _post(c, "/v1/prompt", _prompt(d_p["id"], "hand-prompt"))
        _insert(c, "project_logs", d_p["id"], [{"id": "hand-log", "input": "app"}])
        _insert(c, "dataset", d["keep-ds"]["id"], [{"id": "hand-row", "input": "by hand"}])
    _delete_in_source(url, src, ids)

    # A dry run lists what would go and changes nothing.
    before = _snapshot(url, dst)
    plan = await migrate(url, src, dst, tmp_path, dry_run=True, sync_deletes=True)
    deletes = plan.report["deletes"]
    assert deletes["dry_run"] is True
    listed = {(o["type"], o["name"]) for o in deletes["objects_deleted"]}
    assert listed == {("prompts", "gone-prompt"), ("datasets", "gone-ds"), ("experiments", "gone-exp")}
    rows = {(r["container"], r["dest_id"]): r["rows_deleted"] for r in deletes["rows"]}
    assert rows == {("project_logs", d_p["id"]): 2, ("dataset", d["keep-ds"]["id"]): 2}
    assert _snapshot(url, dst) == before

    # Without the flag nothing is deleted.
    plain = await migrate(url, src, dst, tmp_path)
    assert plain.ok and "deletes" not in plain.report
    assert _snapshot(url, dst) == before

    done = await migrate(url, src, dst, tmp_path, sync_deletes=True)
    assert done.ok, done.report["errors"]
    with _client(url, dst) as c:
        for gone, kind in (("gone-prompt", "prompt"), ("gone-ds", "dataset"), ("gone-exp", "experiment")):
            assert not _alive(c, kind, d[gone]["id"]), gone
        assert _alive(c, "prompt", d["keep-prompt"]["id"]) and _alive(c, "dataset", d["keep-ds"]["id"])
        assert _alive(c, "project", hand_project["id"]) and _alive(c, "prompt", hand_prompt["id"])
        assert _alive(c, "project", pre_q["id"])  # adopted: its source is gone, but it is not ours
        assert _row_ids(c, "project_logs", d_p["id"]) == {"log-2", "log-3", "log-4", "log-5", "hand-log"}
        assert _row_ids(c, "dataset", d["keep-ds"]["id"]) == {
            "keep-ds-0",
            "keep-ds-1",
            "keep-ds-2",
            "hand-row",
        }
    report = done.report
    deleted = {(o["type"], o["name"]) for o in report["objects"] if o["action"] == "deleted"}
    assert deleted == listed
    assert report["totals"]["prompts"].get("deleted") == 1
    assert report["deletes"]["rows_deleted"] == 4
    assert "Mirror deletes (--sync-deletes): deleted 3 objects, 4 rows" in done.summary_path.read_text()

    # Done once: a second pass finds nothing more to delete.
    again = await migrate(url, src, dst, tmp_path, sync_deletes=True)
    assert again.report["deletes"]["objects_deleted"] == [] and again.report["deletes"]["rows"] == []


async def test_edited_or_shared_objects_are_kept(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with _client(url, src) as c:
        p = _post(c, "/v1/project", {"name": "P"})
        edited = _post(c, "/v1/prompt", _prompt(p["id"], "edited"))
        shared = _post(c, "/v1/prompt", _prompt(p["id"], "shared"))
        holder = _post(c, "/v1/dataset", {"name": "holder", "project_id": p["id"]})
        _insert(c, "dataset", holder["id"], [{"id": "ours", "input": 1}])
    assert (await migrate(url, src, dst, tmp_path)).ok
    with _client(url, dst) as c:
        d_p = _by_name(c, "/v1/project", "P")
        assert d_p is not None
        d_edited = _by_name(c, "/v1/prompt", "edited", project_id=d_p["id"])
        d_shared = _by_name(c, "/v1/prompt", "shared", project_id=d_p["id"])
        assert d_edited and d_shared
        d_holder = _by_name(c, "/v1/dataset", "holder", project_id=d_p["id"])
        assert d_holder
        c.patch(f"/v1/prompt/{d_edited['id']}", json={"description": "edited by hand"}).raise_for_status()
        # A row an application wrote into the migrated dataset: deleting the dataset would take it.
        _insert(c, "dataset", d_holder["id"], [{"id": "theirs", "input": 2}])
    with _client(url, src) as c:
        for kind, obj in (("prompt", edited), ("prompt", shared), ("dataset", holder)):
            c.delete(f"/v1/{kind}/{obj['id']}").raise_for_status()
    # Another source org's pair into the same destination maps the shared prompt too (a consolidation).
    other = tmp_path / f"other-org__to__{dst.id}"
    other.mkdir()
    sibling = StateStore(other / "state.db")
    sibling.record_mapping("prompt", "elsewhere", d_shared["id"], None, None)
    sibling.close()

    done = await migrate(url, src, dst, tmp_path, sync_deletes=True)
    kept = {k["name"]: k["reason"] for k in done.report["deletes"]["kept"]}
    assert kept == {
        "edited": "changed_in_destination",
        "shared": "shared_with_another_pair",
        "holder": "would_delete_what_the_tool_did_not_make",
    }
    with _client(url, dst) as c:
        assert _alive(c, "prompt", d_edited["id"]) and _alive(c, "prompt", d_shared["id"])
        assert _alive(c, "dataset", d_holder["id"])
        assert _row_ids(c, "dataset", d_holder["id"]) == {"ours", "theirs"}


def test_an_older_state_learns_what_the_tool_created(tmp_path):
    """Schema 1 had no created_by_tool: mappings whose recorded outcome says 'created' (the same
    destination object) become the tool's; adopted ones (outcome 'unchanged') stay not."""
    db = tmp_path / "state.db"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE id_map (kind TEXT NOT NULL, src_id TEXT NOT NULL, dest_id TEXT NOT NULL,"
        " src_checksum TEXT, dest_checksum TEXT, updated_at REAL NOT NULL, PRIMARY KEY (kind, src_id));"
        "CREATE TABLE outcomes (run_id TEXT NOT NULL, kind TEXT NOT NULL, src_id TEXT NOT NULL,"
        " record TEXT NOT NULL, PRIMARY KEY (run_id, kind, src_id));"
        "INSERT INTO meta VALUES ('tool', 'braintrust-migrate'), ('schema_version', '1');"
        "INSERT INTO id_map VALUES ('prompt', 's1', 'd1', 'a', 'b', 0), ('prompt', 's2', 'd2', 'a', 'b', 0),"
        " ('prompt', 's3', 'd3-new', 'a', 'b', 0);"
    )
    for src_id, action, dest_id in (
        ("s1", "created", "d1"),
        ("s2", "unchanged", "d2"),
        ("s3", "created", "d3"),
    ):
        record = orjson.dumps({"action": action, "dest_id": dest_id}).decode()
        con.execute("INSERT INTO outcomes VALUES ('r1', 'prompt', ?, ?)", (src_id, record))
    con.commit()
    con.close()
    from braintrust_migrate.engine.state import StateStore

    state = StateStore(db)
    assert {m.src_id: m.created_by_tool for m in state.mappings()} == {"s1": True, "s2": False, "s3": False}
    assert state.get_meta("schema_version") == "2"
    # Later records of the same object keep it ours; a mapping to another object does not.
    state.record_mapping("prompt", "s1", "d1", "x", "y")
    state.record_mapping("prompt", "s2", "d2", "x", "y", created=True)
    state.record_mapping("prompt", "s2", "d2-other", "x", "y")
    assert {m.src_id: m.created_by_tool for m in state.mappings()} == {"s1": True, "s2": False, "s3": False}
    state.close()


def test_cli_dry_run_lists_what_sync_deletes_would_delete(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with _client(url, src) as c:
        p = _post(c, "/v1/project", {"name": "P"})
        gone = _post(c, "/v1/prompt", _prompt(p["id"], "gone-prompt"))
        _insert(c, "project_logs", p["id"], [{"id": f"log-{i}", "input": i} for i in range(3)])
    env = cli_run.cli_env(url, src, dst, tmp_path)
    first = cli_run.run(env)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    with _client(url, src) as c:
        c.delete(f"/v1/prompt/{gone['id']}").raise_for_status()
        _insert(c, "project_logs", p["id"], [{"id": "log-0", "_object_delete": True}])
    before = _snapshot(url, dst)
    dry = cli_run.run(env, "--dry-run", "--sync-deletes")
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    assert "Mirror deletes (--sync-deletes): would delete 1 objects, 1 rows" in dry.stdout
    assert "would delete: prompts P/gone-prompt" in dry.stdout
    assert "would delete: 1 rows of" in dry.stdout
    assert _snapshot(url, dst) == before
    path = next(line.split(": ", 1)[1] for line in dry.stdout.splitlines() if line.startswith("report: "))
    report = orjson.loads(Path(path).read_bytes())
    assert [o["name"] for o in report["deletes"]["objects_deleted"]] == ["gone-prompt"]
    with _client(url, dst) as c:
        query = Query("project_logs", [_by_name(c, "/v1/project", "P")["id"]], select=["id"], limit=100)
        query.where(any_of("id", ["log-0"]))
        assert c.post("/btql", json=query.body()).raise_for_status().json()["data"]  # still there
