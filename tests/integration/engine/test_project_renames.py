"""Project renames (--project-map, --project-prefix) end to end against sandbox orgs, judged by
the independent oracle (given the expected names) and by plain HTTP reads."""

from __future__ import annotations

from typing import Any

import httpx

from braintrust_migrate.verify.runner import Verifier
from tests.integration.engine.harness import list_all, migrate, seed, settings_for
from tests.oracle import compare_orgs

PREFIX = "a/"


def _expected(names: list[str], mapping: dict[str, str]) -> dict[str, str]:
    # The oracle's own statement of the rule: a map entry wins, else the prefix.
    return {n: mapping.get(n, PREFIX + n) for n in names}


def _graph_nodes(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for fn in functions:
        nodes = (fn.get("function_data") or {}).get("nodes") or {}
        out += [n["function"] for n in nodes.values() if (n.get("function") or {}).get("project_name")]
    return out


async def test_every_project_lands_renamed_and_graph_nodes_follow(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    source_projects = sorted(p["name"] for p in list_all(url, src, "/v1/project"))
    assert len(source_projects) >= 2
    mapping = {source_projects[0]: "X"}
    expected = _expected(source_projects, mapping)
    settings = {"migration_project_map": mapping, "migration_project_prefix": PREFIX}

    result = await migrate(url, src, dst, tmp_path, map_users=True, **settings)
    assert result.ok, [o for o in result.report["objects"] if o["action"] == "failed"][:3]
    assert sorted(p["name"] for p in list_all(url, dst, "/v1/project")) == sorted(expected.values())
    renamed = {o["name"]: o.get("dest_name") for o in result.report["objects"] if o["type"] == "projects"}
    assert renamed == expected

    # A graph node naming a project by name names its destination name (and the seed has one).
    src_nodes = _graph_nodes(list_all(url, src, "/v1/function"))
    dst_nodes = _graph_nodes(list_all(url, dst, "/v1/function"))
    assert src_nodes and len(dst_nodes) == len(src_nodes)
    assert sorted(n["project_name"] for n in dst_nodes) == sorted(
        expected[n["project_name"]] for n in src_nodes
    )

    compare_orgs(url, src.api_key, dst.api_key, project_names=expected).assert_equal()

    before = sandbox_server.write_count(dst.api_key)
    again = await migrate(url, src, dst, tmp_path, map_users=True, **settings)
    assert sandbox_server.write_count(dst.api_key) == before
    assert {o["action"] for o in again.report["objects"]} <= {"unchanged", "skipped"}

    verified = await Verifier(settings_for(url, src, dst, tmp_path, **settings), map_users=True).run()
    projects = next(t for t in verified.report["objects"] if t["type"] == "projects")
    assert projects["missing"] == 0 and projects["extra"] == 0, projects
    assert verified.ok, [t for t in verified.report["objects"] if not t["ok"]][:2]


async def test_a_renamed_name_in_free_text_is_noted_not_rewritten(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {src.api_key}"}) as c:
        p = c.post("/v1/project", json={"name": "Bot"}).raise_for_status().json()
        c.post(
            "/v1/dataset",
            json={"project_id": p["id"], "name": "d", "description": "golden set of Bot, see /app/o/p/Bot"},
        ).raise_for_status()
        c.post("/v1/dataset", json={"project_id": p["id"], "name": "e", "description": "Botany"})
    result = await migrate(url, src, dst, tmp_path, migration_project_map={"Bot": "Support Bot"})
    assert result.ok
    notes = {o["name"]: o.get("notes", []) for o in result.report["objects"] if o["type"] == "datasets"}
    assert notes == {"d": ["project_name_in_text: description"], "e": []}
    [project] = list_all(url, dst, "/v1/project")
    assert project["name"] == "Support Bot"
    datasets = {d["name"]: d for d in list_all(url, dst, "/v1/dataset")}
    assert datasets["d"]["description"] == "golden set of Bot, see /app/o/p/Bot"
    assert {d["project_id"] for d in datasets.values()} == {project["id"]}
