"""Several source orgs into one destination (A→C, then B→C), each pair with its own state:
org objects of one name and one definition are matched, not duplicated; differing ones are
conflicts; each pair's re-run is incremental; verify of one pair does not count the other's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from braintrust_migrate.engine.secrets_file import Secrets
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.sandbox.testing import unique_org_name
from braintrust_migrate.verify.runner import Verifier
from tests.integration.engine import cli_run
from tests.integration.engine.harness import migrate, settings_for
from tests.integration.engine.test_same_org_copy import org_listing, project_id, seed_project, snapshot
from tests.oracle import compare_orgs

SECRETS = Secrets(ai_secrets={"OPENAI": "sk-one-value"})


def seed_org_objects(url: str, org: SandboxOrg, policy: str) -> None:
    """Beside seed_project's (role "Bot-reviewer", group "Bot-team", equal in every org): a role
    "policy" whose permission differs per org, a group only this org has, and an AI secret of one
    name and type."""
    with cli_run.http(url, org) as c:
        c.post("/v1/group", json={"name": f"only-{policy}"}).raise_for_status()
        c.post(
            "/v1/role", json={"name": "policy", "member_permissions": [{"permission": policy}]}
        ).raise_for_status()
        c.post(
            "/v1/ai_secret", json={"name": "OPENAI", "type": "openai", "secret": "sk-one-value"}
        ).raise_for_status()


def objects(result: Any, kind: str, name: str) -> list[dict[str, Any]]:
    return [o for o in result.report["objects"] if o["type"] == kind and o.get("name") == name]


def foreign_labels(url: str, other: SandboxOrg, dest: SandboxOrg, prefix: str) -> set[str]:
    """The oracle's labels for what the other pair brought into the destination: its org
    objects (by name) and everything in the destination projects named with its prefix."""
    labels = set()
    for kind, path in (("roles", "role"), ("groups", "group"), ("ai_secrets", "ai_secret")):
        labels |= {f"{kind} {obj.get('name')}" for obj in org_listing(url, other, path)}
    theirs = {p["id"]: p["name"] for p in org_listing(url, dest, "project") if p["name"].startswith(prefix)}
    labels |= {f"projects {name}" for name in theirs.values()}
    for kind, path in (
        ("datasets", "dataset"),
        ("experiments", "experiment"),
        ("prompts", "prompt"),
        ("functions", "function"),
        ("project_tags", "project_tag"),
    ):
        labels |= {
            f"{kind} {o['name']}" for o in org_listing(url, dest, path) if o.get("project_id") in theirs
        }
    with cli_run.http(url, dest) as client:
        for pid in theirs:
            acls = client.get(
                "/v1/acl", params={"object_type": "project", "object_id": pid}
            ).raise_for_status()
            labels |= {f"acls {acl['id']}" for acl in acls.json()["objects"]}
    return labels


async def test_two_orgs_into_one(sandbox_server: SandboxServer, tmp_path: Path) -> None:
    url = sandbox_server.url
    a, b, c = (sandbox_server.create_org(unique_org_name(n)) for n in ("a", "b", "c"))
    originals = {}
    for org, policy in ((a, "read"), (b, "update")):
        seed_project(url, org)
        seed_org_objects(url, org, policy)
        originals[org.id] = snapshot(url, org, project_id(url, org, "Bot") or "")
    roles_before = {r["name"] for r in org_listing(url, c, "role")}

    first = await migrate(url, a, c, tmp_path, secrets=SECRETS, migration_project_prefix="a/")
    assert first.ok, first.report
    second = await migrate(url, b, c, tmp_path, secrets=SECRETS, migration_project_prefix="b/")
    # B's equal org objects are adopted; its differing role is a conflict, reported.
    assert [o["action"] for o in objects(second, "roles", "Bot-reviewer")] == ["unchanged"]
    assert [o["action"] for o in objects(second, "groups", "Bot-team")] == ["unchanged"]
    # A secret's value cannot be read back: one of the same name is never proven equal, so it is
    # a conflict too (not a second secret).
    assert [o["action"] for o in objects(second, "ai_secrets", "OPENAI")] == ["conflict"]
    assert [o["action"] for o in objects(second, "roles", "policy")] == ["conflict"]
    assert second.report["failed"] == 0

    # C holds both projects, each with all its objects and rows, and each org object once.
    for org, prefix in ((a, "a/"), (b, "b/")):
        copy = project_id(url, c, prefix + "Bot")
        assert copy is not None
        assert snapshot(url, c, copy)["rows dataset golden"] == originals[org.id]["rows dataset golden"]
        got = snapshot(url, c, copy)
        # ACLs and the prompt's tool name ids outside the project: the oracle judges those.
        assert {k: v for k, v in got.items() if k not in ("acl", "prompt")} == {
            k: v for k, v in originals[org.id].items() if k not in ("acl", "prompt")
        }
    names = [r["name"] for r in org_listing(url, c, "role") if r["name"] not in roles_before]
    assert sorted(names) == ["Bot-reviewer", "policy"]
    assert [g["name"] for g in org_listing(url, c, "group")].count("Bot-team") == 1
    assert [s["name"] for s in org_listing(url, c, "ai_secret")] == ["OPENAI"]
    policy = next(r for r in org_listing(url, c, "role") if r["name"] == "policy")
    assert [p["permission"] for p in policy["member_permissions"]] == ["read"]  # A's, kept

    # The independent oracle, per pair with its renames; the other pair's objects are not extra.
    for org, other, prefix, other_prefix in ((a, b, "a/", "b/"), (b, a, "b/", "a/")):
        oracle = compare_orgs(
            url,
            org.api_key,
            c.api_key,
            project_names={"Bot": prefix + "Bot", "Bot-tools": prefix + "Bot-tools"},
        )
        allowed = foreign_labels(url, other, c, other_prefix)
        left = {
            cat: [item for item in items if not (cat == "unexpected destination objects" and item in allowed)]
            for cat, items in oracle.differences.items()
        }
        if org is b:  # the conflict: C keeps A's definition of "policy"
            left = {cat: [i for i in items if "policy" not in i] for cat, items in left.items()}
        assert not any(left.values()), oracle.summary()

    # Each pair's re-run is incremental.
    again_a = await migrate(url, a, c, tmp_path, secrets=SECRETS, migration_project_prefix="a/")
    assert {o["action"] for o in again_a.report["objects"] if o.get("reason") != "system_role"} == {
        "unchanged"
    }
    again_b = await migrate(url, b, c, tmp_path, secrets=SECRETS, migration_project_prefix="b/")
    actions = {
        (o["type"], o["name"]): o["action"]
        for o in again_b.report["objects"]
        if o.get("reason") != "system_role"
    }
    assert actions.pop(("roles", "policy")) == "conflict"
    assert actions.pop(("ai_secrets", "OPENAI")) == "conflict"
    assert set(actions.values()) == {"unchanged"}

    # verify of each pair: nothing of the other pair is extra; B's only difference is its conflict.
    verified_a = await Verifier(settings_for(url, a, c, tmp_path, migration_project_prefix="a/")).run()
    assert verified_a.ok, verified_a.summary_path.read_text()
    with cli_run.http(url, c) as client:  # C's own object, of no pair: extra for every pair
        client.post("/v1/group", json={"name": "c-own"}).raise_for_status()
    verified_a = await Verifier(settings_for(url, a, c, tmp_path, migration_project_prefix="a/")).run()
    groups = next(row for row in verified_a.report["objects"] if row["type"] == "groups")
    assert [g["name"] for g in groups["extra_sample"]] == ["c-own"]
    verified_b = await Verifier(settings_for(url, b, c, tmp_path, migration_project_prefix="b/")).run()
    rows = {row["type"]: row for row in verified_b.report["objects"]}
    assert [g["name"] for g in rows["groups"]["extra_sample"]] == ["c-own"]
    assert all(row["extra"] == 0 for name, row in rows.items() if name != "groups"), (
        verified_b.summary_path.read_text()
    )
    assert [d["name"] for d in rows["roles"]["differing_sample"]] == ["policy"]
    assert all(row["ok"] for name, row in rows.items() if name not in ("roles", "groups")), (
        verified_b.summary_path.read_text()
    )


async def test_a_second_source_meeting_the_first_ones_project_needs_a_name_or_a_merge(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    """B's "Bot" (no rename) would land on the "Bot" that A's migration created in C: refused before
    any write, unless --merge-into-existing; the refused run leaves nothing to resume."""
    url = sandbox_server.url
    a, b, c = (sandbox_server.create_org(unique_org_name(n)) for n in ("a", "b", "c"))
    for org in (a, b):
        seed_project(url, org)
    assert (await migrate(url, a, c, tmp_path)).ok
    writes = sandbox_server.write_count(c.api_key)
    env = cli_run.cli_env(url, b, c, tmp_path)
    refused = cli_run.run(env)
    assert refused.returncode == 2, refused.stderr
    lines = [line for line in refused.stderr.splitlines() if "'Bot', 'Bot-tools'" in line]
    assert len(lines) == 1, refused.stderr
    assert "another source org" in lines[0] and "--merge-into-existing" in lines[0]
    assert "Traceback" not in refused.stderr
    assert sandbox_server.write_count(c.api_key) == writes
    merged = await migrate(url, b, c, tmp_path, merge_into_existing=True)
    assert not merged.report["resumed"]  # the refused run was closed, not left to resume
    assert [p["name"] for p in org_listing(url, c, "project")].count("Bot") == 1
    bot = [o for o in merged.report["objects"] if o["type"] == "projects" and o["name"] == "Bot"]
    assert bot and bot[0]["action"] in ("unchanged", "updated", "conflict")  # matched, not a second one
