"""Importing an export: what the export selected, and a restore into the org it came from."""

from __future__ import annotations

import httpx

import braintrust_migrate as bm
from braintrust_migrate.sandbox.seed.run import seed_org


def names(url: str, key: str, path: str) -> list[str]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        return sorted(o["name"] for o in client.get(path, params={"limit": 1000}).json()["objects"])


async def test_an_export_of_one_project_imports_that_project_only(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed_org(url, src.api_key, profile="small", seed=5)
    projects = names(url, src.api_key, "/v1/project")
    assert len(projects) >= 2
    chosen = projects[0]
    base = {"migration_state_dir": tmp_path / "state", "migration_retry_delay": 0.01}
    exported = await bm.export(
        {**base, "bt_source_url": url, "bt_source_api_key": src.api_key, "migration_projects": [chosen]},
        to=tmp_path / "export",
        env_file=None,
    )
    assert exported.ok
    # Projects are exported whole (ids resolve through them); the import still takes only the one chosen.
    result = await bm.migrate(
        {**base, "bt_dest_url": url, "bt_dest_api_key": dst.api_key},
        from_dir=tmp_path / "export",
        env_file=None,
    )
    assert result.ok
    assert names(url, dst.api_key, "/v1/project") == [chosen]
    source_datasets = {d["name"] for d in _in_project(url, src.api_key, chosen, "/v1/dataset")}
    assert {d["name"] for d in _in_project(url, dst.api_key, chosen, "/v1/dataset")} == source_datasets


def _in_project(url: str, key: str, project: str, path: str) -> list[dict]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        found = client.get("/v1/project", params={"project_name": project}).json()["objects"][0]
        return client.get(path, params={"project_id": found["id"], "limit": 1000}).json()["objects"]


async def test_an_export_restored_into_its_own_org_finds_everything_unchanged(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src = sandbox_server.url, sandbox_orgs.source
    await seed_org(url, src.api_key, profile="small", seed=6)
    base = {"migration_state_dir": tmp_path / "state", "migration_retry_delay": 0.01}
    live = {**base, "bt_source_url": url, "bt_source_api_key": src.api_key}
    assert (await bm.export(live, to=tmp_path / "export", env_file=None)).ok
    own = {**base, "bt_dest_url": url, "bt_dest_api_key": src.api_key}
    planned = await bm.plan(own, from_dir=tmp_path / "export", map_users=True, env_file=None)
    # The same objects with the same history: pins to their older versions are the same versions.
    actions = {action for counts in planned.counts.values() for action in counts}
    assert actions <= {"unchanged", "skipped"}, planned.counts
