"""The object migration end to end, against sandbox orgs over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from braintrust_migrate.config import ConfigError
from braintrust_migrate.engine.secrets_file import Secrets, load_secrets
from braintrust_migrate.engine.selection import MigrationInputError
from tests.integration.engine.harness import list_all, migrate, seed, snapshot, state_store
from tests.oracle import compare_orgs


def writes(server, org) -> int:
    return server.write_count(org.api_key)


async def test_medium_org_arrives_whole_with_every_reference_translated(
    sandbox_server, sandbox_orgs, tmp_path
):
    """Judged by the independent oracle (tests/oracle): objects, ACLs, rows, comments, no source id left."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "medium")
    source_writes = writes(sandbox_server, src)
    result = await migrate(url, src, dst, tmp_path, map_users=True)
    failures = [o for o in result.report["objects"] if o["action"] == "failed"]
    assert not failures, failures[:3]
    oracle = compare_orgs(url, src.api_key, dst.api_key)
    oracle.assert_equal()
    assert oracle.objects_compared > 300 and oracle.rows_compared > 1000
    assert writes(sandbox_server, src) == source_writes


async def test_rerun_writes_nothing_and_changes_update_exactly_those(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    await migrate(url, src, dst, tmp_path)
    before = writes(sandbox_server, dst)
    again = await migrate(url, src, dst, tmp_path)
    assert writes(sandbox_server, dst) == before
    assert {o["action"] for o in again.report["objects"]} <= {"unchanged", "skipped", "conflict"}

    headers = {"Authorization": f"Bearer {src.api_key}"}
    with httpx.Client(base_url=url, headers=headers) as client:
        prompt = client.get("/v1/prompt", params={"limit": 1}).json()["objects"][0]
        client.patch(
            f"/v1/prompt/{prompt['id']}", json={"description": "changed in source"}
        ).raise_for_status()
        dataset = client.get("/v1/dataset", params={"limit": 1}).json()["objects"][0]
        client.patch(f"/v1/dataset/{dataset['id']}", json={"description": "also changed"}).raise_for_status()
    third = await migrate(url, src, dst, tmp_path)
    updated = {(o["kind"], o["source_id"]) for o in third.report["objects"] if o["action"] == "updated"}
    assert updated == {("prompt", prompt["id"]), ("dataset", dataset["id"])}
    dest_prompts = {p["slug"]: p for p in snapshot(url, dst)["prompts"]}
    assert dest_prompts[prompt["slug"]]["description"] == "changed in source"


async def test_preexisting_destination_objects_are_conflicts_unless_overwrite(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    auth = lambda org: {"Authorization": f"Bearer {org.api_key}"}  # noqa: E731
    with httpx.Client(base_url=url) as client:
        sp = client.post("/v1/project", json={"name": "Shared"}, headers=auth(src)).json()
        client.post(
            "/v1/dataset",
            json={"project_id": sp["id"], "name": "golden", "description": "v2"},
            headers=auth(src),
        )
        client.post(
            "/v1/dataset",
            json={"project_id": sp["id"], "name": "same", "description": "x"},
            headers=auth(src),
        )
        dp = client.post("/v1/project", json={"name": "Shared"}, headers=auth(dst)).json()
        client.post(
            "/v1/dataset",
            json={"project_id": dp["id"], "name": "golden", "description": "v1"},
            headers=auth(dst),
        )
        client.post(
            "/v1/dataset",
            json={"project_id": dp["id"], "name": "same", "description": "x"},
            headers=auth(dst),
        )
    result = await migrate(url, src, dst, tmp_path, migration_resources="datasets")
    by_name = {o["name"]: o for o in result.report["objects"] if o["type"] == "datasets"}
    assert by_name["golden"]["action"] == "conflict"
    assert by_name["golden"]["differing_fields"] == ["description"]
    assert by_name["same"]["action"] == "unchanged"
    assert result.ok  # conflicts are reported, not failures
    forced = await migrate(url, src, dst, tmp_path, migration_resources="datasets", overwrite=True)
    assert {o["name"]: o["action"] for o in forced.report["objects"] if o["type"] == "datasets"}[
        "golden"
    ] == "updated"
    golden = [d for d in snapshot(url, dst)["datasets"] if d["name"] == "golden"]
    assert [d["description"] for d in golden] == ["v2"]


async def test_dry_run_writes_nothing_but_plans_everything(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    before = writes(sandbox_server, dst)
    plan = await migrate(url, src, dst, tmp_path, dry_run=True)
    assert writes(sandbox_server, dst) == before
    assert plan.report["dry_run"] is True
    assert plan.report["totals"]["prompts"]["created"] > 0
    assert snapshot(url, dst)["prompts"] == []


async def test_selected_resources_and_projects_only(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    names = [p["name"] for p in snapshot(url, src)["projects"]]
    result = await migrate(
        url, src, dst, tmp_path, migration_resources="datasets", migration_projects=[names[0]]
    )
    assert set(result.report["totals"]) <= {"projects", "datasets", "project_settings"}
    dest = snapshot(url, dst)
    assert [p["name"] for p in dest["projects"]] == [names[0]]
    assert dest["prompts"] == [] and dest["datasets"]


async def test_unknown_project_lists_the_valid_ones(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    with pytest.raises(MigrationInputError, match=r"unknown project.*'Nope'.*projects in the source org"):
        await migrate(url, src, dst, tmp_path, migration_projects="Nope")


def test_secrets_file_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_secrets(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ai_secrets: [sk-do-not-print-me\n")
    with pytest.raises(ConfigError) as info:
        load_secrets(bad)
    assert "sk-do-not-print-me" not in str(info.value)
    flat = tmp_path / "flat.yaml"
    flat.write_text("OPENAI: sk-1\n")
    assert load_secrets(flat).ai_secrets == {"OPENAI": "sk-1"}
    assert "sk-1" not in repr(load_secrets(flat))


async def test_secret_values_come_from_the_secrets_file(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {src.api_key}"}) as client:
        client.post("/v1/ai_secret", json={"name": "OPENAI", "type": "openai", "secret": "sk-source-value"})
        client.post("/v1/ai_secret", json={"name": "ANTHROPIC", "type": "anthropic", "secret": "sk-other"})
    result = await migrate(
        url,
        src,
        dst,
        tmp_path,
        migration_resources="ai_secrets",
        secrets=Secrets(ai_secrets={"OPENAI": "sk-new-value"}),
    )
    reasons = {o["name"]: o.get("reason") for o in result.report["objects"] if o["type"] == "ai_secrets"}
    assert reasons == {"OPENAI": None, "ANTHROPIC": "secret_needs_value"}
    secrets = {s["name"]: s for s in snapshot(url, dst)["ai_secrets"]}
    assert secrets["OPENAI"]["preview_secret"] and secrets["ANTHROPIC"]["preview_secret"] in (None, "")
    text = result.summary_path.read_text() + result.report_path.read_text()
    assert "sk-new-value" not in text and "sk-source-value" not in text
    assert any(
        f["reason"] == "secret_needs_value" and f["name"] == "ANTHROPIC" for f in result.report["follow_ups"]
    )


async def test_users_are_mapped_by_email_and_missing_ones_invited(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    source_users = {u["email"]: u["id"] for u in list_all(url, src, "/v1/user")}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {src.api_key}"}) as client:
        client.post("/v1/group", json={"name": "everyone", "member_users": list(source_users.values())})
    unmapped = await migrate(url, src, dst, tmp_path, migration_resources="groups")
    group = next(g for g in snapshot(url, dst)["groups"] if g["name"] == "everyone")
    assert group["member_users"] == []
    assert any(f["reason"] == "user_not_mapped" for f in unmapped.report["follow_ups"])

    invited = await migrate(
        url, src, dst, tmp_path, migration_resources="groups", map_users=True, invite_users=True
    )
    dest_users = {u["email"]: u["id"] for u in list_all(url, dst, "/v1/user")}
    assert set(source_users) <= set(dest_users)
    group = next(g for g in snapshot(url, dst)["groups"] if g["name"] == "everyone")
    assert sorted(group["member_users"]) == sorted(dest_users[e] for e in source_users)
    assert invited.ok


async def test_created_window_selects_experiments(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {src.api_key}"}) as client:
        project = client.post("/v1/project", json={"name": "P"}).json()
        client.post("/v1/experiment", json={"project_id": project["id"], "name": "recent"})
    in_window = await migrate(
        url, src, dst, tmp_path, migration_resources="experiments", migration_created_after="2000-01-01"
    )
    assert [o["name"] for o in in_window.report["objects"] if o["type"] == "experiments"] == ["recent"]
    outside = await migrate(
        url,
        src,
        dst,
        tmp_path / "b",
        migration_resources="experiments",
        migration_created_before="2000-01-01",
    )
    assert [o for o in outside.report["objects"] if o["type"] == "experiments"] == []


async def test_a_resumed_run_reports_what_the_interrupted_one_created(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    first = await migrate(url, src, dst, tmp_path)
    store = state_store(tmp_path, src, dst)
    store._db.execute("UPDATE runs SET status = 'running'")  # as if killed before the end
    store.close()
    resumed = await migrate(url, src, dst, tmp_path)
    assert resumed.report["run_id"] == first.report["run_id"]
    assert resumed.report["totals"]["prompts"] == first.report["totals"]["prompts"] == {"created": 10}
