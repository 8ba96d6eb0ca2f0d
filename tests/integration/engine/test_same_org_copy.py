"""Copying a project inside one org (--project-map / --project-prefix, source org = destination org):
the copy holds the original's objects and rows, the original is untouched, org objects are shared."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from braintrust_migrate.btql import Query
from braintrust_migrate.engine.same_org import FINGERPRINT_META
from braintrust_migrate.engine.state import StateStore, pair_folder
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.sandbox.testing import unique_org_name
from braintrust_migrate.verify.runner import Verifier
from tests.integration.engine import cli_run
from tests.integration.engine.harness import migrate, settings_for

# Project-scoped types the copy must hold, listed per project over plain HTTP.
PROJECT_TYPES = ("dataset", "experiment", "prompt", "function", "project_tag", "project_score")
VOLATILE = {
    "project_id",
    "created",
    "_xact_id",
    "user_id",
    "org_id",
    "log_id",
    "_pagination_key",
    "root_span_id",
    "span_id",
    "span_parents",
    "dataset_id",
    "experiment_id",
}


def seed_project(url: str, org: SandboxOrg, name: str = "Bot") -> dict[str, str]:
    """A project whose objects reference each other, an org role/group, and a tool in another project."""
    with cli_run.http(url, org) as c:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            return c.post(path, json=body).raise_for_status().json()

        other = post("/v1/project", {"name": f"{name}-tools"})
        tool = post(
            "/v1/function",
            {
                "project_id": other["id"],
                "name": "lookup",
                "slug": "lookup",
                "function_data": {
                    "type": "code",
                    "data": {
                        "type": "inline",
                        "runtime_context": {"runtime": "node", "version": "20"},
                        "code": "x",
                    },
                },
            },
        )
        project = post("/v1/project", {"name": name})
        role = post("/v1/role", {"name": f"{name}-reviewer", "member_permissions": [{"permission": "read"}]})
        group = post("/v1/group", {"name": f"{name}-team"})
        dataset = post("/v1/dataset", {"project_id": project["id"], "name": "golden"})
        rows = [{"id": f"r{i}", "input": {"q": i}, "expected": i * 2} for i in range(7)]
        c.post(f"/v1/dataset/{dataset['id']}/insert", json={"events": rows}).raise_for_status()
        experiment = post(
            "/v1/experiment", {"project_id": project["id"], "name": "run-1", "dataset_id": dataset["id"]}
        )
        c.post(
            f"/v1/experiment/{experiment['id']}/insert",
            json={
                "events": [
                    {"id": f"e{i}", "input": {"q": i}, "output": i, "scores": {"s": 1}} for i in range(4)
                ]
            },
        ).raise_for_status()
        post(
            "/v1/prompt",
            {
                "project_id": project["id"],
                "name": "answer",
                "slug": "answer",
                "prompt_data": {
                    "prompt": {"type": "chat", "messages": [{"role": "system", "content": "hi"}]},
                    "tool_functions": [{"type": "function", "id": tool["id"]}],
                },
            },
        )
        post("/v1/project_tag", {"project_id": project["id"], "name": "urgent", "color": "red"})
        post(
            "/v1/acl",
            {
                "object_type": "project",
                "object_id": project["id"],
                "group_id": group["id"],
                "role_id": role["id"],
            },
        )
        return {"project": project["id"], "role": role["id"], "group": group["id"], "tool": tool["id"]}


def project_id(url: str, org: SandboxOrg, name: str) -> str | None:
    with cli_run.http(url, org) as c:
        found = c.get("/v1/project", params={"project_name": name}).raise_for_status().json()["objects"]
    return found[0]["id"] if found else None


def snapshot(url: str, org: SandboxOrg, pid: str) -> dict[str, Any]:
    """Everything a project holds, by plain HTTP and BTQL, with its own ids replaced by names."""
    out: dict[str, Any] = {}
    names: dict[str, str] = {pid: "<project>"}
    with cli_run.http(url, org) as c:
        listed: dict[str, list[dict[str, Any]]] = {}
        for kind in PROJECT_TYPES:
            objs = c.get(f"/v1/{kind}", params={"project_id": pid, "limit": 1000}).raise_for_status().json()
            listed[kind] = [o for o in objs["objects"] if o.get("project_id") == pid]
            names.update({o["id"]: f"<{kind} {o['name']}>" for o in listed[kind]})

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items() if k not in VOLATILE}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return names.get(value, value) if isinstance(value, str) else value

        for kind, objs in listed.items():
            out[kind] = sorted((plain(o) for o in objs), key=lambda o: json.dumps(o, sort_keys=True))
        for kind in ("dataset", "experiment"):
            for obj in listed[kind]:
                query = Query(kind, [obj["id"]], limit=1000)
                data = c.post("/btql", json=query.body()).raise_for_status().json()["data"]
                out[f"rows {kind} {obj['name']}"] = sorted((plain(r) for r in data), key=lambda r: r["id"])
        acls = c.get("/v1/acl", params={"object_type": "project", "object_id": pid}).raise_for_status().json()
        out["acl"] = sorted(
            (a.get("group_id"), a.get("role_id"), a.get("permission")) for a in acls["objects"]
        )
    return out


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def org_listing(url: str, org: SandboxOrg, kind: str) -> list[dict[str, Any]]:
    with cli_run.http(url, org) as c:
        return c.get(f"/v1/{kind}", params={"limit": 1000}).raise_for_status().json()["objects"]


@pytest.fixture
def org(sandbox_server: SandboxServer) -> SandboxOrg:
    return sandbox_server.create_org(unique_org_name("one"))


async def test_clone_project_inside_one_org(
    sandbox_server: SandboxServer, org: SandboxOrg, tmp_path: Path
) -> None:
    url = sandbox_server.url
    seeded = seed_project(url, org)
    before = snapshot(url, org, seeded["project"])
    roles_before = len(org_listing(url, org, "role"))
    groups_before = len(org_listing(url, org, "group"))

    result = await migrate(
        url, org, org, tmp_path, migration_projects=["Bot"], migration_project_map={"Bot": "Bot copy"}
    )
    assert result.ok, result.report

    clone = project_id(url, org, "Bot copy")
    assert clone is not None and clone != seeded["project"]
    copied = snapshot(url, org, clone)
    assert copied == before  # every object, reference and row, by name
    assert copied["acl"] == [(seeded["group"], seeded["role"], None)]  # the org's own role and group
    prompt = next(p for p in org_listing(url, org, "prompt") if p["project_id"] == clone)
    assert prompt["prompt_data"]["tool_functions"] == [{"type": "function", "id": seeded["tool"]}]
    # Org objects are not copied; the original and the other project are untouched.
    assert len(org_listing(url, org, "role")) == roles_before
    assert len(org_listing(url, org, "group")) == groups_before
    assert fingerprint(snapshot(url, org, seeded["project"])) == fingerprint(before)
    assert project_id(url, org, "Bot-tools copy") is None

    again = await migrate(
        url, org, org, tmp_path, migration_projects=["Bot"], migration_project_map={"Bot": "Bot copy"}
    )
    assert again.ok
    assert {o["action"] for o in again.report["objects"]} == {"unchanged"}, again.report["objects"]
    assert fingerprint(snapshot(url, org, seeded["project"])) == fingerprint(before)
    renames = {"migration_projects": ["Bot"], "migration_project_map": {"Bot": "Bot copy"}}
    verified = await Verifier(settings_for(url, org, org, tmp_path, **renames)).run()
    assert verified.ok, verified.summary_path.read_text()
    store = StateStore(pair_folder(tmp_path, org.id, org.id) / "state.db")
    try:
        assert store.get_meta(FINGERPRINT_META) is not None
    finally:
        store.close()


def test_same_org_cli_refusals(sandbox_server: SandboxServer, org: SandboxOrg, tmp_path: Path) -> None:
    url = sandbox_server.url
    seed_project(url, org)
    writes = sandbox_server.write_count(org.api_key)
    env = cli_run.cli_env(url, org, org, tmp_path, MIGRATION_PROJECTS="Bot")

    plain = cli_run.run(env)
    assert plain.returncode == 2, plain.stderr
    assert "--project-map" in plain.stderr and "Traceback" not in plain.stderr
    assert not (tmp_path / f"{org.id}__to__{org.id}").exists()  # refused before any state

    onto = cli_run.run(env, "--project-map", "Bot=Bot-tools")  # a name the org already has
    assert onto.returncode == 2, onto.stderr
    assert "'Bot-tools'" in onto.stderr and "Traceback" not in onto.stderr
    assert len([line for line in onto.stderr.strip().splitlines() if line.strip()]) == 1
    assert sandbox_server.write_count(org.api_key) == writes  # nothing written by either refusal

    first = cli_run.run(env, "--project-map", "Bot=Bot A")
    assert first.returncode == 0, first.stderr
    other = cli_run.run(env, "--project-map", "Bot=Bot B")  # another rename into the same state
    assert other.returncode == 2, other.stderr
    assert "--state-dir" in other.stderr and "Traceback" not in other.stderr
    assert project_id(url, org, "Bot B") is None
    assert project_id(url, org, "Bot A") is not None


async def test_prefix_copies_every_project_once(
    sandbox_server: SandboxServer, org: SandboxOrg, tmp_path: Path
) -> None:
    """With a prefix and no --projects, a re-run copies the originals again, never the copies."""
    url = sandbox_server.url
    seeded = seed_project(url, org)
    before = snapshot(url, org, seeded["project"])
    first = await migrate(url, org, org, tmp_path, migration_project_prefix="copy/")
    assert first.ok, first.report
    names = sorted(p["name"] for p in org_listing(url, org, "project"))
    assert names == ["Bot", "Bot-tools", "copy/Bot", "copy/Bot-tools"]
    again = await migrate(url, org, org, tmp_path, migration_project_prefix="copy/")
    assert {o["action"] for o in again.report["objects"]} == {"unchanged"}
    assert sorted(p["name"] for p in org_listing(url, org, "project")) == names
    copy_id = project_id(url, org, "copy/Bot")
    assert copy_id is not None
    copied = snapshot(url, org, copy_id)
    tool_copy = next(
        f
        for f in org_listing(url, org, "function")
        if f["project_id"] == project_id(url, org, "copy/Bot-tools")
    )
    prompt = next(p for p in org_listing(url, org, "prompt") if p["project_id"] == copy_id)
    # Both projects are copied: the copy's tool reference names the copied tool.
    assert prompt["prompt_data"]["tool_functions"] == [{"type": "function", "id": tool_copy["id"]}]
    assert {k: v for k, v in copied.items() if k != "prompt"} == {
        k: v for k, v in before.items() if k != "prompt"
    }
    assert fingerprint(snapshot(url, org, seeded["project"])) == fingerprint(before)
    verified = await Verifier(settings_for(url, org, org, tmp_path, migration_project_prefix="copy/")).run()
    assert verified.ok, verified.summary_path.read_text()
