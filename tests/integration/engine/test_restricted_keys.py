"""Keys with fewer rights than an owner's: what the key may not list is reported as failed with the
reason, the rest is migrated exactly, the source is never written and nothing is half-written."""

from __future__ import annotations

import dataclasses
import subprocess

from tests.integration.engine.cli_run import SCRIPT, cli_env, http, run
from tests.integration.engine.harness import migrate, seed
from tests.oracle import compare_orgs

READ_ALL_BUT_ACLS = [{"object_type": "organization", "permissions": ["read"]}]


def _restricted(server, org, **rights):
    return dataclasses.replace(org, api_key=server.create_key(org.name, **rights))


def _failed(report, reason):
    return [o for o in report["objects"] if o["action"] == "failed" and o.get("reason") == reason]


async def test_a_source_key_that_cannot_read_acls_fails_them_and_copies_the_rest(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    reader = _restricted(sandbox_server, src, grants=READ_ALL_BUT_ACLS)

    result = await migrate(url, reader, dst, tmp_path, map_users=True)

    assert not result.ok
    refused = _failed(result.report, "source_not_readable")
    assert [(o["type"], o["error"]["status"]) for o in refused] == [("acls", 403)]
    assert sandbox_server.write_count(reader.api_key) == 0
    # Judged with the owner's key: everything is there but the ACLs.
    differences = {k: v for k, v in compare_orgs(url, src.api_key, dst.api_key).differences.items() if v}
    assert list(differences) == ["missing objects"], differences
    assert all(item.startswith("acls ") for item in differences["missing objects"])


async def test_a_destination_key_that_cannot_list_acls_writes_none_and_fails_each(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    engineer = _restricted(sandbox_server, dst, role="engineer")

    result = await migrate(url, src, engineer, tmp_path, map_users=True)

    refused = _failed(result.report, "destination_not_readable")
    source_acls = [o for o in result.report["objects"] if o["type"] == "acls"]
    assert refused and all(o["type"] == "acls" for o in refused)
    assert len(refused) == len([o for o in source_acls if o["action"] != "skipped"])
    # An engineer may not manage access either: each group and role fails on its own 403.
    others = [o for o in result.report["objects"] if o["action"] == "failed" and o["type"] != "acls"]
    assert {o["type"] for o in others} == {"groups", "roles"}
    assert {o["error"]["status"] for o in others} == {403}
    differences = {k: v for k, v in compare_orgs(url, src.api_key, dst.api_key).differences.items() if v}
    assert {item.split(" ")[0] for item in differences.pop("missing objects")} == {"acls", "groups", "roles"}
    assert not any("rows" in category for category in differences), differences


def test_the_cli_exits_1_and_names_what_the_key_may_not_read(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with_acl = sandbox_server.create_key(src.name, grants=READ_ALL_BUT_ACLS)
    env = cli_env(url, src, dst, tmp_path, BT_SOURCE_API_KEY=with_acl)

    done = run(env)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "not allowed to GET /v1/acl/list_org" in done.stderr and "read_acls" in done.stderr
    assert "grant the source key's user read access" in done.stdout  # the to-do in the summary
    assert "Traceback" not in done.stderr


def test_validate_names_a_selected_project_the_source_key_cannot_read(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with http(url, src) as c:
        seen = c.post("/v1/project", json={"name": "seen"}).raise_for_status().json()
        c.post("/v1/project", json={"name": "hidden"}).raise_for_status()
    one_project = sandbox_server.create_key(
        src.name, grants=[{"object_type": "project", "object_id": seen["id"], "permissions": ["read"]}]
    )
    env = cli_env(url, src, dst, tmp_path, BT_SOURCE_API_KEY=one_project, MIGRATION_PROJECTS="seen,hidden")

    done = subprocess.run([SCRIPT, "validate"], env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stdout.splitlines() if "hidden" in line]
    assert any("that the source key can read" in line for line in lines), done.stdout
    assert any("'seen'" in line and "exists" in line for line in done.stdout.splitlines()), done.stdout
