"""Real permissions in the sandbox: restricted keys and ACL enforcement, judged over plain HTTP."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from braintrust_migrate.btql import Query
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.sandbox.testing import unique_org_name
from tests.integration.engine.cli_run import SCRIPT, cli_env

DENIED = "You do not have permission"


@dataclasses.dataclass
class World:
    """One org with two projects (a dataset with a row in each), an owner client and a key factory."""

    server: SandboxServer
    org: SandboxOrg
    owner: httpx.Client
    p1: dict[str, Any]
    p2: dict[str, Any]
    d1: dict[str, Any]
    d2: dict[str, Any]

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def world(sandbox_server: SandboxServer) -> Iterator[World]:
    org = sandbox_server.create_org(unique_org_name("perm"))
    with httpx.Client(
        base_url=sandbox_server.url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=30
    ) as owner:
        p1 = owner.post("/v1/project", json={"name": "one"}).raise_for_status().json()
        p2 = owner.post("/v1/project", json={"name": "two"}).raise_for_status().json()
        d1 = owner.post("/v1/dataset", json={"name": "d", "project_id": p1["id"]}).raise_for_status().json()
        d2 = owner.post("/v1/dataset", json={"name": "d", "project_id": p2["id"]}).raise_for_status().json()
        for d in (d1, d2):
            owner.post(f"/v1/dataset/{d['id']}/insert", json={"events": [{"input": "x"}]}).raise_for_status()
        yield World(sandbox_server, org, owner, p1, p2, d1, d2)


def _denied(response: httpx.Response, permission: str) -> None:
    assert response.status_code == 403, response.text
    message = response.json()["error"]
    assert DENIED in message and f"'{permission}'" in message, message


def _btql(c: httpx.Client, dataset_id: str) -> httpx.Response:
    return c.post("/btql", json=Query("dataset", [dataset_id], select=["id"]).body())


def test_viewer_reads_everything_but_writes_nothing(world: World) -> None:
    with world.client(world.server.create_key(world.org.name, role="viewer")) as viewer:
        names = {p["name"] for p in viewer.get("/v1/project").raise_for_status().json()["objects"]}
        assert names == {"one", "two"}
        assert viewer.get(f"/v1/dataset/{world.d1['id']}").status_code == 200
        assert len(_btql(viewer, world.d2["id"]).raise_for_status().json()["data"]) == 1
        fetched = viewer.post(f"/v1/dataset/{world.d1['id']}/fetch", json={}).raise_for_status().json()
        assert len(fetched["events"]) == 1
        _denied(viewer.post("/v1/project", json={"name": "new"}), "create")
        _denied(viewer.post("/v1/dataset", json={"name": "x", "project_id": world.p1["id"]}), "create")
        _denied(viewer.patch(f"/v1/project/{world.p1['id']}", json={"description": "x"}), "update")
        _denied(viewer.delete(f"/v1/dataset/{world.d1['id']}"), "delete")
        _denied(
            viewer.post(f"/v1/dataset/{world.d1['id']}/insert", json={"events": [{"input": 1}]}), "update"
        )
    # Nothing changed (judged by the owner).
    owner_projects = world.owner.get("/v1/project").json()["objects"]
    assert {p["name"] for p in owner_projects} == {"one", "two"}
    assert all(p["description"] is None for p in owner_projects)
    assert len(_btql(world.owner, world.d1["id"]).json()["data"]) == 1


def test_engineer_writes_objects_but_not_acls(world: World) -> None:
    with world.client(world.server.create_key(world.org.name, role="engineer")) as eng:
        made = eng.post("/v1/project", json={"name": "eng"}).raise_for_status().json()
        eng.patch(f"/v1/project/{made['id']}", json={"description": "ok"}).raise_for_status()
        eng.post(f"/v1/dataset/{world.d1['id']}/insert", json={"events": [{"input": 2}]}).raise_for_status()
        eng.delete(f"/v1/project/{made['id']}").raise_for_status()
        group = world.owner.get("/v1/group", params={"group_name": "Viewers"}).json()["objects"][0]
        acl = {
            "object_type": "project",
            "object_id": world.p1["id"],
            "group_id": group["id"],
            "permission": "read",
        }
        _denied(eng.post("/v1/acl", json=acl), "create_acls")
        _denied(eng.post("/v1/acl/batch_update", json={"add_acls": [acl]}), "create_acls")
        _denied(eng.get("/v1/acl/list_org"), "read_acls")
        _denied(
            eng.get("/v1/acl", params={"object_type": "project", "object_id": world.p1["id"]}), "read_acls"
        )
        _denied(eng.post("/v1/role", json={"name": "custom"}), "create_acls")
        _denied(eng.patch(f"/v1/group/{group['id']}", json={"description": "x"}), "update_acls")
        members = {"invite_users": {"emails": ["new.person@example.com"]}}
        _denied(eng.patch("/v1/organization/members", json=members), "update_acls")
    assert len(_btql(world.owner, world.d1["id"]).json()["data"]) == 2
    listed = world.owner.get("/v1/acl", params={"object_type": "project", "object_id": world.p1["id"]})
    assert listed.raise_for_status().json()["objects"] == []


def test_key_limited_to_one_project(world: World) -> None:
    grants = [{"object_type": "project", "object_id": world.p1["id"], "permissions": ["read", "update"]}]
    with world.client(world.server.create_key(world.org.name, grants=grants)) as one:
        assert [p["name"] for p in one.get("/v1/project").json()["objects"]] == ["one"]
        assert [d["id"] for d in one.get("/v1/dataset").json()["objects"]] == [world.d1["id"]]
        assert len(_btql(one, world.d1["id"]).raise_for_status().json()["data"]) == 1
        one.post(f"/v1/dataset/{world.d1['id']}/insert", json={"events": [{"input": 3}]}).raise_for_status()
        _denied(one.get(f"/v1/project/{world.p2['id']}"), "read")
        _denied(one.get(f"/v1/dataset/{world.d2['id']}"), "read")
        _denied(_btql(one, world.d2["id"]), "read")
        _denied(one.post(f"/v1/dataset/{world.d2['id']}/fetch", json={}), "read")
        _denied(one.post(f"/v1/dataset/{world.d2['id']}/insert", json={"events": [{"input": 4}]}), "update")
        _denied(one.post("/v1/dataset", json={"name": "new", "project_id": world.p1["id"]}), "create")
        # Paging through what it may read: pages are filled from readable rows only.
        page = one.get("/v1/project", params={"limit": 1}).json()["objects"]
        assert [p["name"] for p in page] == ["one"]
    assert len(_btql(world.owner, world.d2["id"]).json()["data"]) == 1


def test_restrict_object_type_and_group_inheritance(world: World) -> None:
    """An org-wide grant narrowed to datasets; a group's rights reach users of groups it includes."""
    grants = [{"object_type": "organization", "permissions": ["read"], "restrict_object_type": "dataset"}]
    with world.client(world.server.create_key(world.org.name, grants=grants)) as narrow:
        assert narrow.get("/v1/project").json()["objects"] == []
        assert len(narrow.get("/v1/dataset").json()["objects"]) == 2
        _denied(narrow.get(f"/v1/project/{world.p1['id']}"), "read")
    key = world.server.create_key(world.org.name)  # a member with no rights at all
    with world.client(key) as nobody:
        assert nobody.get("/v1/project").json()["objects"] == []
        me = nobody.get("/v1/organization").json()["objects"]
        assert [o["id"] for o in me] == [world.org.id]  # it still sees its org
        user_id = nobody.post("/api/apikey/login", json={}).status_code  # unrelated: must not be 403
        assert user_id == 200
    readers = world.owner.post("/v1/group", json={"name": "readers"}).raise_for_status().json()
    world.owner.post(
        "/v1/acl",
        json={
            "object_type": "project",
            "object_id": world.p2["id"],
            "group_id": readers["id"],
            "permission": "read",
        },
    ).raise_for_status()
    inner = world.owner.post("/v1/group", json={"name": "inner"}).raise_for_status().json()
    users = world.owner.get("/v1/user").json()["objects"]
    nobody_id = next(u["id"] for u in users if u["email"].startswith("restricted-"))
    world.owner.patch(f"/v1/group/{inner['id']}", json={"add_member_users": [nobody_id]}).raise_for_status()
    # "readers" inherits from "inner": every user of inner is a user of readers.
    world.owner.patch(
        f"/v1/group/{readers['id']}", json={"add_member_groups": [inner["id"]]}
    ).raise_for_status()
    with world.client(key) as nobody:
        assert [p["name"] for p in nobody.get("/v1/project").json()["objects"]] == ["two"]


def test_owner_keys_unchanged(world: World) -> None:
    owner_key = world.server.create_key(world.org.name, role="owner")
    for key in (world.org.api_key, owner_key):
        with world.client(key) as c:
            assert len(c.get("/v1/acl/list_org").raise_for_status().json()) >= 3
            made = c.post("/v1/project", json={"name": f"o-{key[-4:]}"}).raise_for_status().json()
            c.delete(f"/v1/project/{made['id']}").raise_for_status()


def test_admin_api_creates_restricted_keys(world: World) -> None:
    headers = {"X-Sandbox-Admin-Key": world.server.admin_key}
    with httpx.Client(base_url=world.server.url, headers=headers, timeout=30) as admin:
        made = admin.post("/_sandbox/keys", json={"org_name": world.org.name, "role": "viewer"})
        bad = admin.post("/_sandbox/keys", json={"org_name": world.org.name, "role": "boss"})
    assert made.status_code == 200 and made.json()["role"] == "viewer"
    assert bad.status_code == 400 and "role must be one of" in bad.json()["error"]
    with world.client(made.json()["api_key"]) as viewer:
        assert viewer.get("/v1/project").status_code == 200
        _denied(viewer.post("/v1/project", json={"name": "n"}), "create")
    with world.client("sk-not-a-key") as stranger:
        assert stranger.get("/v1/project").status_code == 401


# --- the CLI syntax -----------------------------------------------------------------------------


def test_orgs_file_and_org_flag_make_restricted_keys(tmp_path: Path) -> None:
    from braintrust_migrate.sandbox import cli

    orgs_file = tmp_path / "orgs.yaml"
    orgs_file.write_text(
        "orgs:\n  - name: fo\n    api_key: sk-fo-owner\n    keys:\n"
        "      - {api_key: sk-fo-viewer, role: viewer}\n"
        "      - {api_key: sk-fo-none, grants: [{object_type: organization, permissions: [read]}]}\n"
    )
    orgs, grants = cli._load_orgs_file(orgs_file)
    assert cli._parse_org("cli=sk-cli-eng:engineer") == {
        "name": "cli",
        "keys": [{"api_key": "sk-cli-eng", "role": "engineer"}],
    }
    with pytest.raises(cli._UsageError, match="ROLE"):
        cli._parse_org("cli=sk-x:boss")
    with SandboxServer() as server:
        lines = cli._provision(server, [*orgs, cli._parse_org("cli=sk-cli-eng:engineer")], grants)
        assert lines == [
            "org fo: viewer key sk-fo-viewer",
            "org fo: restricted key sk-fo-none",
            "org cli: engineer key sk-cli-eng",
        ]
        with httpx.Client(base_url=server.url, timeout=30) as c:
            auth = {"Authorization": "Bearer sk-fo-viewer"}
            assert c.post("/v1/project", json={"name": "p"}, headers=auth).status_code == 403
            auth = {"Authorization": "Bearer sk-fo-owner"}
            assert c.post("/v1/project", json={"name": "p"}, headers=auth).status_code == 200
            auth = {"Authorization": "Bearer sk-cli-eng"}
            assert c.post("/v1/project", json={"name": "p"}, headers=auth).status_code == 200
            assert c.get("/v1/acl/list_org", headers=auth).status_code == 403


def test_serve_help_documents_the_role_syntax() -> None:
    out = subprocess.run([SCRIPT, "sandbox", "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert "NAME=API_KEY:ROLE" in " ".join(out.stdout.split())


# --- validate against restricted keys -----------------------------------------------------------


def _validate(
    server: SandboxServer, source_key: str, dest_key: str, tmp_path: Path
) -> dict[tuple[str, str], Any]:
    placeholder = SandboxOrg("x", "x", "", "")
    env = cli_env(server.url, placeholder, placeholder, tmp_path / "state")
    env.update(BT_SOURCE_API_KEY=source_key, BT_DEST_API_KEY=dest_key)
    done = subprocess.run(
        [SCRIPT, "validate", "--write-check", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0, done.stdout
    return {(c["side"], c["name"]): c for c in json.loads(done.stdout)["checks"]}


def test_validate_names_what_restricted_keys_miss(sandbox_server: SandboxServer, tmp_path: Path) -> None:
    source = sandbox_server.create_org(unique_org_name("vsrc"))
    dest = sandbox_server.create_org(unique_org_name("vdst"))
    source_viewer = sandbox_server.create_key(source.name, role="viewer")  # reads, but not ACLs
    dest_viewer = sandbox_server.create_key(dest.name, role="viewer")
    checks = _validate(sandbox_server, source_viewer, dest_viewer, tmp_path)
    write = checks[("dest", "write access")]
    assert write["status"] == "fail" and "'create' permission" in write["detail"], write
    acls = checks[("source", "read acls")]
    assert acls["status"] == "fail" and "'read_acls'" in acls["detail"], acls
    assert "read_acls" in acls["fix"], acls
    assert checks[("source", "read projects")]["status"] == "pass"
    assert sandbox_server.write_count(dest.api_key) == 0
