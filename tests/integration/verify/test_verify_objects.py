"""`verify` on objects: parity after a migration, and each kind of damage caught."""

from __future__ import annotations

import httpx

from braintrust_migrate.verify.runner import Verifier
from tests.integration.engine.harness import migrate, seed, settings_for


async def verify(url, src, dst, tmp_path, **overrides):
    return await Verifier(settings_for(url, src, dst, tmp_path, **overrides), map_users=True).run()


def rows(report, type_name):
    return next(r for r in report["objects"] if r["type"] == type_name)


async def migrated(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    result = await migrate(url, src, dst, tmp_path, map_users=True, invite_users=True, overwrite=True)
    assert result.ok
    return url, src, dst


def client(url, org):
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"})


async def test_parity_after_migration(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = await migrated(sandbox_server, sandbox_orgs, tmp_path)
    result = await verify(url, src, dst, tmp_path)
    assert result.ok, result.summary_path.read_text()
    assert result.report_path.name == "verify_report.json"
    assert "PARITY" in result.summary_path.read_text()


async def test_catches_a_prompt_that_lost_its_tool_function(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = await migrated(sandbox_server, sandbox_orgs, tmp_path)
    with client(url, dst) as c:
        prompts = c.get("/v1/prompt").json()["objects"]
        victim = next(p for p in prompts if (p.get("prompt_data") or {}).get("tool_functions"))
        data = dict(victim["prompt_data"])
        data["tool_functions"] = data["tool_functions"][1:]
        body = {
            k: victim[k]
            for k in ("project_id", "name", "slug", "description", "tags")
            if victim.get(k) is not None
        }
        c.put("/v1/prompt", json={**body, "prompt_data": data}).raise_for_status()
    result = await verify(url, src, dst, tmp_path)
    assert not result.ok
    differing = rows(result.report, "prompts")["differing_sample"]
    assert any(
        d["name"] == victim["name"] and "prompt_data.tool_functions" in " ".join(d["fields"])
        for d in differing
    )


async def test_catches_a_source_id_left_in_the_destination(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = await migrated(sandbox_server, sandbox_orgs, tmp_path)
    with client(url, src) as c:
        source_dataset = c.get("/v1/dataset").json()["objects"][0]
    with client(url, dst) as c:
        dataset = c.get("/v1/dataset").json()["objects"][0]
        c.patch(f"/v1/dataset/{dataset['id']}", json={"metadata": {"copied_from": source_dataset["id"]}})
    result = await verify(url, src, dst, tmp_path)
    assert not result.ok
    leaks = result.report["source_id_leaks"]
    assert {
        "type": "datasets",
        "dest_id": dataset["id"],
        "field": "metadata.copied_from",
        "source_id": source_dataset["id"],
    } in leaks


async def test_catches_a_missing_and_an_extra_object(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = await migrated(sandbox_server, sandbox_orgs, tmp_path)
    with client(url, dst) as c:
        tag = c.get("/v1/project_tag").json()["objects"][0]
        c.delete(f"/v1/project_tag/{tag['id']}").raise_for_status()
        c.post("/v1/project_tag", json={"project_id": tag["project_id"], "name": "only in destination"})
    result = await verify(url, src, dst, tmp_path)
    assert not result.ok
    parity = rows(result.report, "project_tags")
    assert [m["name"] for m in parity["missing_sample"]] == [tag["name"]]
    assert [e["name"] for e in parity["extra_sample"]] == ["only in destination"]
