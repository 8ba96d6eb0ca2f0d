"""`verify` sees everything it claims to: each test migrates, checks parity, tampers the
destination over plain HTTP, and expects verify to report exactly that damage."""

from __future__ import annotations

from typing import Any

import httpx

from braintrust_migrate.verify.runner import Verifier
from tests.integration.engine.harness import list_all, migrate, seed, settings_for
from tests.integration.events.helpers import insert


def client(url: str, org: Any) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=60)


async def verify(url, src, dst, tmp_path, sample=None, **overrides):
    settings = settings_for(url, src, dst, tmp_path, **overrides)
    return await Verifier(settings, map_users=True, sample=sample).run()


def objects(report: dict[str, Any], type_name: str) -> dict[str, Any]:
    return next(r for r in report["objects"] if r["type"] == type_name)


async def migrated(server, orgs, tmp_path):
    url, src, dst = server.url, orgs.source, orgs.dest
    await seed(url, src, "small")
    result = await migrate(url, src, dst, tmp_path, map_users=True, invite_users=True, overwrite=True)
    assert result.ok
    before = await verify(url, src, dst, tmp_path)
    assert before.ok, before.summary_path.read_text()
    return url, src, dst, before.report


def only_failures(report: dict[str, Any]) -> set[str]:
    return {r["type"] for r in report["objects"] if not r["ok"]}


async def test_a_deleted_dataset_snapshot_is_missing(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst, before = await migrated(sandbox_server, sandbox_orgs, tmp_path)
    source_snapshots = list_all(url, src, "/v1/dataset_snapshot")
    assert source_snapshots
    snapshots = objects(before, "dataset_snapshots")
    assert snapshots["source"] == snapshots["matched"] == len(source_snapshots)

    victim = list_all(url, dst, "/v1/dataset_snapshot")[0]
    with client(url, dst) as c:
        c.delete(f"/v1/dataset_snapshot/{victim['id']}").raise_for_status()
    after = await verify(url, src, dst, tmp_path)
    assert not after.ok
    assert only_failures(after.report) == {"dataset_snapshots"}
    snapshots = objects(after.report, "dataset_snapshots")
    assert [m["name"] for m in snapshots["missing_sample"]] == [victim["name"]]
    assert snapshots["matched"] == len(source_snapshots) - 1


async def test_rows_holding_source_ids_are_leaks(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst, before = await migrated(sandbox_server, sandbox_orgs, tmp_path)
    assert before["source_id_leak_count"] == 0
    source_experiment = list_all(url, src, "/v1/experiment")[0]
    source_dataset = list_all(url, src, "/v1/dataset")[0]
    dest_experiment = next(
        e for e in list_all(url, dst, "/v1/experiment") if e["name"] == source_experiment["name"]
    )
    dest_dataset = next(d for d in list_all(url, dst, "/v1/dataset") if d["name"] == source_dataset["name"])
    origin = {"object_type": "experiment", "object_id": source_experiment["id"], "id": "elsewhere"}
    insert(url, dst, "experiment", dest_experiment["id"], [{"id": "stray", "input": "x", "origin": origin}])
    with client(url, dst) as c:
        query = {"query": f"select: id\nfrom: dataset('{dest_dataset['id']}') spans\nlimit: 1", "fmt": "json"}
        row_id = c.post("/btql", json=query).raise_for_status().json()["data"][0]["id"]
    insert(
        url,
        dst,
        "dataset",
        dest_dataset["id"],
        [{"id": row_id, "_is_merge": True, "metadata": {"copied_from": source_dataset["id"]}}],
    )

    expected = [
        {
            "type": "dataset",
            "dest_id": dest_dataset["id"],
            "row_id": row_id,
            "field": "metadata.copied_from",
            "source_id": source_dataset["id"],
        },
        {
            "type": "experiment",
            "dest_id": dest_experiment["id"],
            "row_id": "stray",
            "field": "origin.object_id",
            "source_id": source_experiment["id"],
        },
    ]
    after = await verify(url, src, dst, tmp_path)
    assert not after.ok
    assert after.report["source_id_leak_count"] == 2
    assert sorted(after.report["source_id_leaks"], key=lambda leak: leak["type"]) == expected
    assert f"row {row_id} metadata.copied_from = {source_dataset['id']}" in after.summary_path.read_text()

    # --sample reads only the sampled destination rows: the stray row is not one of them.
    sampled = await verify(url, src, dst, tmp_path, sample=1000)
    assert not sampled.ok
    assert sampled.report["source_id_leak_count"] == 1
    assert sampled.report["source_id_leaks"] == expected[:1]


async def test_an_acl_whose_role_or_group_is_gone_is_missing(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst, before = await migrated(sandbox_server, sandbox_orgs, tmp_path)
    acls = objects(before, "acls")
    assert acls["not_migratable"] == [] and acls["source"] == acls["matched"] > 0
    source_acls = list_all(url, src, "/v1/acl/list_org")
    source_roles = {r["id"]: r for r in list_all(url, src, "/v1/role") if r.get("org_id")}
    source_groups = {g["id"]: g for g in list_all(url, src, "/v1/group")}
    role = source_roles[next(a["role_id"] for a in source_acls if a.get("role_id") in source_roles)]
    group = source_groups[next(a["group_id"] for a in source_acls if a.get("group_id") in source_groups)]
    with client(url, dst) as c:
        for path, name in (("/v1/role", role["name"]), ("/v1/group", group["name"])):
            twin = next(o for o in list_all(url, dst, path) if o["name"] == name)
            c.delete(f"{path}/{twin['id']}").raise_for_status()

    after = await verify(url, src, dst, tmp_path)
    assert not after.ok
    acls = objects(after.report, "acls")
    gone = {role["id"], group["id"]}  # granted through them, or granted on them
    hit = {a["id"] for a in source_acls if gone & {a.get("role_id"), a.get("group_id"), a.get("object_id")}}
    assert {m["source_id"] for m in acls["missing_sample"]} == hit
    assert acls["not_migratable"] == []
    assert acls["source"] == acls["matched"] + len(hit)
    for missing in acls["missing_sample"]:
        acl = next(a for a in source_acls if a["id"] == missing["source_id"])
        if acl.get("role_id") == role["id"]:
            assert f"role {role['name']!r} is missing in the destination" in missing["reason"]
        if acl.get("group_id") == group["id"]:
            assert f"group {group['name']!r} is missing in the destination" in missing["reason"]
    assert [m["name"] for m in objects(after.report, "roles")["missing_sample"]] == [role["name"]]
    assert [m["name"] for m in objects(after.report, "groups")["missing_sample"]] == [group["name"]]


async def test_sample_compares_exactly_rows_with_quote_and_backslash_ids(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    ids = ["a\\", "' or is_root = true --"]
    with client(url, src) as c:
        project = c.post("/v1/project", json={"name": "quotes"}).raise_for_status().json()
    insert(url, src, "project_logs", project["id"], [{"id": i, "input": f"row {i}"} for i in ids])
    options = {"migration_resources": ["logs"]}
    assert (await migrate(url, src, dst, tmp_path, **options)).ok
    with client(url, dst) as c:
        dest_project = c.get("/v1/project", params={"project_name": "quotes"}).json()["objects"][0]
    # Rows only the destination has: an unquoted id would drag them into the comparison.
    insert(url, dst, "project_logs", dest_project["id"], [{"id": f"other-{n}", "input": n} for n in range(6)])
    insert(
        url,
        dst,
        "project_logs",
        dest_project["id"],
        [{"id": ids[1], "_is_merge": True, "output": "tampered"}],
    )

    result = await verify(url, src, dst, tmp_path, sample=2, **options)
    logs = next(e for e in result.report["events"] if e["container"] == "project_logs")
    assert logs["sampled_rows"] == 2
    assert logs["missing"] == 0
    assert logs["differing_sample"] == [ids[1]]
    assert (logs["source_rows"], logs["dest_rows"]) == (2, 8)
