"""`migrate` and `verify` agree: what migrate reports as a to-do it could not do (an unmapped
user, a secret without its value, bundled code) is an *expected* difference in verify, listed
with its to-do, not a failure; any other difference still fails. The built-in groups every org
has (Owners, Engineers, Viewers) are merged: mapped members added, nothing removed.

Everything a user types goes through the installed CLI; the destination is judged over plain HTTP.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from tests.integration.engine.cli_run import SCRIPT, cli_env

# Bob is in both orgs (mapped by email), Zed only in the source (unmapped), Carl only in the
# destination: its Engineers group holds Carl, not Bob, before the migration.
SOURCE_USERS = ["alice.nguyen@example.com", "bob.martin@example.com", "zed.unmapped@example.com"]
DEST_USERS = ["alice.nguyen@example.com", "bob.martin@example.com", "carl.dest-only@example.com"]
BUNDLE = {
    "type": "code",
    "data": {
        "type": "bundle",
        "runtime_context": {"runtime": "node", "version": "20"},
        "location": {"type": "function", "index": 0},
        "bundle_id": "bundle-0001",
    },
}


def _client(url: str, org: SandboxOrg) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=30)


def _users(c: httpx.Client) -> dict[str, str]:
    return {u["email"]: u["id"] for u in c.get("/v1/user").raise_for_status().json()["objects"]}


def _group(c: httpx.Client, name: str) -> dict[str, Any]:
    return c.get("/v1/group", params={"group_name": name}).raise_for_status().json()["objects"][0]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def orgs(sandbox_server: SandboxServer, tmp_path: Path) -> tuple[str, SandboxOrg, SandboxOrg, dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    src = sandbox_server.create_org(f"todo-src-{tag}", users=SOURCE_USERS)
    dst = sandbox_server.create_org(f"todo-dst-{tag}", users=DEST_USERS)
    url = sandbox_server.url
    with _client(url, src) as c:
        zed = _users(c)["zed.unmapped@example.com"]
        project = c.post("/v1/project", json={"name": "todo-p"}).raise_for_status().json()
        c.post(
            "/v1/ai_secret", json={"name": "OPENAI_API_KEY", "type": "openai", "secret": "sk-not-copied"}
        ).raise_for_status()
        c.post(
            "/v1/function",
            json={"project_id": project["id"], "name": "bundled", "slug": "bundled", "function_data": BUNDLE},
        ).raise_for_status()
        c.post(
            "/v1/acl",
            json={"object_type": "project", "object_id": project["id"], "user_id": zed, "permission": "read"},
        ).raise_for_status()
    with _client(url, dst) as c:
        bob = _users(c)["bob.martin@example.com"]
        engineers = _group(c, "Engineers")
        c.patch(f"/v1/group/{engineers['id']}", json={"remove_member_users": [bob]}).raise_for_status()
    return url, src, dst, cli_env(url, src, dst, tmp_path / "state")


def _migrate(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = _cli(env, "migrate", "--map-users")
    report = next(Path(env["MIGRATION_STATE_DIR"]).glob("*/runs/*/migration_report.json"))
    return proc, json.loads(report.read_text())


def _verify(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = _cli(env, "verify", "--map-users")
    found = sorted(Path(env["MIGRATION_STATE_DIR"]).glob("*/verify/*/verify_report.json"))
    return proc, json.loads(found[-1].read_text())


def test_builtin_group_is_merged_not_a_conflict(
    orgs: tuple[str, SandboxOrg, SandboxOrg, dict[str, str]],
) -> None:
    url, _, dst, env = orgs
    with _client(url, dst) as c:
        dest_users = _users(c)
        before = _group(c, "Engineers")
    assert dest_users["bob.martin@example.com"] not in before["member_users"]

    proc, report = _migrate(env)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    engineers = next(o for o in report["objects"] if o["type"] == "groups" and o["name"] == "Engineers")
    assert engineers["action"] == "updated" and engineers["dest_id"] == before["id"], engineers
    assert not any(o["action"] == "conflict" for o in report["objects"])
    with _client(url, dst) as c:
        after = _group(c, "Engineers")
        assert len([g for g in c.get("/v1/group").json()["objects"] if g["name"] == "Engineers"]) == 1
    # The destination's own member is kept, the mapped one added, the unmapped one cannot be.
    assert set(before["member_users"]) <= set(after["member_users"])
    assert dest_users["carl.dest-only@example.com"] in after["member_users"]
    assert dest_users["bob.martin@example.com"] in after["member_users"]
    assert len(after["member_users"]) == len(before["member_users"]) + 1

    again = _cli(env, "migrate", "--map-users")
    assert again.returncode == 0, again.stdout + again.stderr
    reports = sorted(Path(env["MIGRATION_STATE_DIR"]).glob("*/runs/*/migration_report.json"))
    second = json.loads(reports[-1].read_text())
    rerun = next(o for o in second["objects"] if o["type"] == "groups" and o["name"] == "Engineers")
    assert rerun["action"] == "unchanged", rerun


def test_todos_are_expected_differences_and_verify_passes(
    orgs: tuple[str, SandboxOrg, SandboxOrg, dict[str, str]],
) -> None:
    _, _, _, env = orgs
    migrated, _ = _migrate(env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    proc, report = _verify(env)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify: PARITY" in proc.stdout and "Expected differences" in proc.stdout
    expected = report["expected_differences"]
    by_reason = {(e["reason"], e["type"], e["name"]) for e in expected}
    assert ("secret_needs_value", "ai_secrets", "OPENAI_API_KEY") in by_reason
    assert ("code_bundle_not_migratable", "functions", "bundled") in by_reason
    assert ("user_not_mapped", "groups", "Engineers") in by_reason
    acl = next(e for e in expected if e["type"] == "acls")
    assert acl["reason"] == "user_not_mapped" and "zed.unmapped@example.com" in acl["users"]
    assert all(e["todo"] for e in expected)
    for line in ("secret_needs_value (1)", "code_bundle_not_migratable (1)", "user_not_mapped (2)"):
        assert line in proc.stdout, proc.stdout


def test_any_other_difference_still_fails(orgs: tuple[str, SandboxOrg, SandboxOrg, dict[str, str]]) -> None:
    url, _, dst, env = orgs
    migrated, _ = _migrate(env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    with _client(url, dst) as c:
        project = c.get("/v1/project", params={"project_name": "todo-p"}).json()["objects"][0]
        c.patch(f"/v1/project/{project['id']}", json={"description": "edited by hand"}).raise_for_status()
        bob = _users(c)["bob.martin@example.com"]
        engineers = _group(c, "Engineers")
        c.patch(f"/v1/group/{engineers['id']}", json={"remove_member_users": [bob]}).raise_for_status()

    proc, report = _verify(env)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DIFFERENCES FOUND" in proc.stdout
    differing = {
        (r["type"], d["name"], tuple(d["fields"])) for r in report["objects"] for d in r["differing_sample"]
    }
    assert ("projects", "todo-p", ("description",)) in differing
    assert ("groups", "Engineers", ("member_users",)) in differing  # a mapped member taken out
    assert report["expected_differences"]  # the to-dos are still listed, apart
