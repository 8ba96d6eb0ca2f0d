"""The seed generator against the sandbox server, over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from braintrust_migrate.sandbox.seed.http import SeedClient
from braintrust_migrate.sandbox.seed.inventory import Inventory, dangling, fetch_inventory, find_references
from braintrust_migrate.sandbox.seed.names import AWKWARD_NAMES
from braintrust_migrate.sandbox.seed.plan import Ref
from braintrust_migrate.sandbox.seed.run import (
    PROFILES,
    SeedError,
    SeedInputError,
    SeedResult,
    build_plan,
    seed_org,
    seed_org_sync,
)

pytestmark = pytest.mark.timeout(120)

# Types whose seeded objects must all be listed back (users are only invited when missing).
LISTED_KINDS = (
    "acl",
    "ai_secret",
    "api_key",
    "dataset",
    "dataset_snapshot",
    "env_var",
    "environment",
    "experiment",
    "function",
    "group",
    "mcp_server",
    "project",
    "project_automation",
    "project_score",
    "project_tag",
    "prompt",
    "role",
    "service_token",
    "span_iframe",
    "view",
)

# Every id-bearing field of braintrust-api.md §2.x that a client can set, as
# reported by seed_inventory.find_references (server-set fields are listed apart).
REQUIRED_REFERENCES = {
    # project
    "project.user_id",
    "project.settings.baseline_experiment_id",
    "project.settings.default_preprocessor.id",
    "project.settings.default_preprocessor.version",
    "project.settings.spanFieldOrder.column_id",
    "project.settings.remote_eval_sources.url",
    # experiment
    "experiment.project_id",
    "experiment.base_exp_id",
    "experiment.dataset_id",
    "experiment.dataset_version",
    "experiment.parameters_id",
    "experiment.parameters_version",
    "experiment.internal_metadata.dataset_filter",
    # project-scoped objects
    "dataset.project_id",
    "project_tag.project_id",
    "span_iframe.project_id",
    "mcp_server.project_id",
    "project_score.project_id",
    "project_automation.project_id",
    # prompt
    "prompt.project_id",
    "prompt.prompt_data.tool_functions.id",
    "prompt.prompt_data.tool_functions.version",
    "prompt.prompt_data.tool_functions.global",
    "prompt.prompt_data.mcp.id",
    "prompt.prompt_data.mcp.url",
    "prompt.prompt_data.origin.prompt_id",
    "prompt.prompt_data.origin.project_id",
    "prompt.prompt_data.origin.prompt_version",
    "prompt.prompt_data.prompt.messages.file.file_id",
    "prompt.prompt_data.prompt.messages.tool_calls.id",
    "prompt.prompt_data.prompt.messages.tool_call_id",
    "prompt.prompt_data.prompt.messages.reasoning.id",
    "function.prompt_data.prompt.messages.tool_calls.id",
    # function
    "function.project_id",
    "function.prompt_data.tool_functions.id",
    "function.prompt_data.tool_functions.global",
    "function.origin.project",
    "function.origin.experiment",
    "function.origin.prompt",
    "function.function_data.data.bundle_id",
    "function.graph.nodes.function.function_id",
    "function.graph.nodes.function.project_name+slug",
    "function.graph.nodes.function.global_function",
    "function.facet.preprocessor.id",
    "function.facet.preprocessor.version",
    "function.batched_facet.preprocessor.id",
    "function.batched_facet.topic_maps.topic_map_id",
    "function.remote_eval.parameters_version",
    "function.topic_map.bundle_key",
    "function.topic_map.report_key",
    # role / group
    "role.member_roles",
    "group.member_users",
    "group.member_groups",
    # acl: every object type that can exist, users, groups, roles, permissions
    "acl.object_id.organization",
    "acl.object_id.org_member",
    "acl.object_id.org_project",
    "acl.object_id.project",
    "acl.object_id.project_log",
    "acl.object_id.experiment",
    "acl.object_id.dataset",
    "acl.object_id.prompt",
    "acl.object_id.group",
    "acl.object_id.role",
    "acl.user_id",
    "acl.group_id",
    "acl.role_id",
    "acl.permission",
    "acl.restrict_object_type",
    # project_automation: every config kind and every reference in them
    "project_automation.config.logs",
    "project_automation.config.btql_export",
    "project_automation.config.retention",
    "project_automation.config.environment_update",
    "project_automation.config.topic",
    "project_automation.config.facet_functions.id",
    "project_automation.config.facet_functions.version",
    "project_automation.config.facet_functions.global",
    "project_automation.config.topic_map_functions.function.id",
    "project_automation.config.topic_map_functions.function.version",
    "project_automation.config.data_scope.experiment_id",
    "project_automation.config.environment_filter",
    # project_score
    "project_score.config.online.scorers.id",
    "project_score.config.online.scorers.version",
    "project_score.config.online.scorers.global",
    # view
    "view.object_id.project",
    "view.object_id.experiment",
    "view.object_id.dataset",
    "view.user_id",
    "view.options.options.projectId",
    # env_var
    "env_var.object_id.organization",
    "env_var.object_id.project",
    "env_var.object_id.function",
    # dataset_snapshot
    "dataset_snapshot.dataset_id",
    "dataset_snapshot.xact_id",
    # service tokens belong to a service account (a user)
    "service_token.service_account_id",
    # server-set, present on every org
    "api_key.user_id",
    "project.org_id",
    "ai_secret.org_id",
    "environment.org_id",
}


@dataclass
class Seeded:
    result: SeedResult
    before: Inventory
    after: Inventory
    api_key: str


def _inventory(url: str, api_key: str) -> Inventory:
    async def go() -> Inventory:
        async with SeedClient(url, api_key) as client:
            return await fetch_inventory(client)

    return asyncio.run(go())


def _seed(server: Any, profile: str, seed: int) -> Seeded:
    org = server.create_org(f"seed-{profile}-{seed}-{uuid.uuid4().hex[:8]}")
    before = _inventory(server.url, org.api_key)
    result = seed_org_sync(server.url, org.api_key, profile=profile, seed=seed)
    after = _inventory(server.url, org.api_key)
    return Seeded(result=result, before=before, after=after, api_key=org.api_key)


@pytest.fixture(scope="module")
def small(sandbox_server: Any) -> Seeded:
    return _seed(sandbox_server, "small", 7)


@pytest.fixture(scope="module")
def medium(sandbox_server: Any) -> Seeded:
    return _seed(sandbox_server, "medium", 11)


# --------------------------------------------------------------------------- the plan alone


def test_plan_is_deterministic_per_seed() -> None:
    for profile in PROFILES:
        assert build_plan(profile, 3).fingerprint() == build_plan(profile, 3).fingerprint()
    assert build_plan("small", 3).fingerprint() != build_plan("small", 4).fingerprint()


def test_plan_orders_every_reference_before_its_user() -> None:
    plan = build_plan("medium", 0)
    seen: set[str] = set()
    for level in plan.levels():
        for op in level:
            assert op.deps() <= seen, op.key
        seen |= {op.key for op in level}
    assert len(seen) == len(plan.ops)
    # The cycles are closed by PATCHes that come after both ends exist.
    for _, a, b in plan.cycles:
        closing = [op for op in plan.ops.values() if op.kind is None and op.key.startswith(a + ".")]
        assert closing and b in closing[0].deps()


def test_plan_has_awkward_names_and_url_friendly_slugs() -> None:
    plan = build_plan("small", 0)
    names = {op.name for op in plan.ops.values() if op.name}
    for template in AWKWARD_NAMES:
        parts = [re.escape(part.replace("{{", "{").replace("}}", "}")) for part in template.split("{n}")]
        assert any(re.fullmatch(r"\d+".join(parts), n) for n in names), template
    assert any(len(n) > 200 for n in names)
    slugs = [op.body["slug"] for op in plan.ops.values() if isinstance(op.body, dict) and "slug" in op.body]
    assert slugs and all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", s) for s in slugs), slugs


def test_plan_sizes_grow_with_profile() -> None:
    sizes = {p: sum(op.kind is not None for op in build_plan(p, 0).ops.values()) for p in PROFILES}
    assert sizes["small"] < 250
    assert 300 <= sizes["medium"] < 1000
    assert sizes["large"] >= 2000
    assert (
        PROFILES["small"].projects <= 2
        and PROFILES["medium"].projects >= 5
        and PROFILES["large"].projects >= 24
    )


# --------------------------------------------------------------------------- seeding over HTTP


def _assert_counts_match(seeded: Seeded) -> None:
    res = seeded.result
    for kind in LISTED_KINDS:
        assert res.counts.get(kind, 0) > 0, f"no {kind} seeded"
        ids = res.ids[kind]
        assert len(ids) == len(set(ids)) == res.counts[kind], (
            f"{kind}: duplicate ids (a create was deduplicated)"
        )
        before = {o["id"] for o in seeded.before.objects[kind]}
        after = {o["id"] for o in seeded.after.objects[kind]}
        assert after - before == set(ids), kind
    assert sum(res.counts.values()) == res.total
    # Users: the run invites some (a late invite into groups, a service account).
    before = {o["id"] for o in seeded.before.objects["user"]}
    after = {o["id"] for o in seeded.after.objects["user"]}
    assert after - before == set(res.ids["user"])
    assert set(res.counts) <= {*LISTED_KINDS, "user"}


def test_small_counts_match_listing(small: Seeded) -> None:
    _assert_counts_match(small)


def test_small_takes_one_request_per_planned_object(small: Seeded) -> None:
    # Speed as a count, not a clock: one write per planned object, plus the event batches.
    object_requests = small.result.requests - small.result.event_requests
    assert object_requests <= len(build_plan("small", 7).ops), object_requests


def test_small_names_round_trip(small: Seeded) -> None:
    plan = build_plan("small", 7)
    listed = {o["id"]: o for objs in small.after.objects.values() for o in objs}
    checked = 0
    for key, obj in small.result.objects.items():
        op = plan.ops.get(key)
        if op is None or op.name is None:
            continue
        assert obj.name == op.name, key
        assert listed[obj.id]["name"] == op.name, key
        checked += 1
    assert checked > 100
    names = {o.get("name") for objs in small.after.objects.values() for o in objs}
    assert any(n and n.startswith("  ") and n.endswith("  ") for n in names)
    assert any(n and len(n) > 200 for n in names)


def test_small_covers_every_reference_kind(small: Seeded) -> None:
    refs = list(find_references(small.after))
    found = {r.kind for r in refs}
    assert REQUIRED_REFERENCES - found == set()
    assert dangling(small.after, refs) == []
    roles = {r["id"]: r for r in small.after.objects["role"]}
    system = {rid for rid, r in roles.items() if r.get("org_id") is None}
    custom = set(roles) - system
    member_roles = {r.value for r in refs if r.kind == "role.member_roles"}
    acl_roles = {r.value for r in refs if r.kind == "acl.role_id"}
    assert member_roles & system and member_roles & custom, "role chains must inherit custom and system roles"
    assert acl_roles & system and acl_roles & custom, "ACLs must grant custom and system roles"
    acls = small.after.objects["acl"]
    assert any(a.get("group_id") and a.get("role_id") for a in acls)
    assert any(a.get("user_id") and a.get("permission") and a.get("restrict_object_type") for a in acls)
    assert any(r.kind == "function.prompt_data.tool_functions.id" for r in refs)


def test_small_chains_and_cross_project_references(small: Seeded) -> None:
    inv = small.after
    groups = {g["id"]: g for g in inv.objects["group"]}
    depth = 0
    for g in groups.values():
        d, cur = 0, g
        while cur.get("member_groups"):
            d, cur = d + 1, groups[cur["member_groups"][0]]
        depth = max(depth, d)
    assert depth >= 2
    roles = {r["id"]: r for r in inv.objects["role"]}
    role_depth = 0
    for r in roles.values():
        d, cur = 0, r
        while True:
            parents = [m for m in cur.get("member_roles") or [] if roles.get(m, {}).get("org_id")]
            if not parents:
                break
            d, cur = d + 1, roles[parents[0]]
        role_depth = max(role_depth, d)
    assert role_depth >= 2
    exps = {e["id"]: e for e in inv.objects["experiment"]}
    assert any(e.get("base_exp_id") and exps[e["base_exp_id"]].get("base_exp_id") for e in exps.values())
    datasets = {d["id"]: d for d in inv.objects["dataset"]}
    assert any(
        e.get("dataset_id") and datasets[e["dataset_id"]]["project_id"] != e["project_id"]
        for e in exps.values()
    )


def test_small_cycles_are_closed(small: Seeded) -> None:
    inv = small.after
    by_id = {o["id"]: o for kind in ("prompt", "function") for o in inv.objects[kind]}
    assert len(small.result.cycles) == 2 * PROFILES["small"].projects
    for desc, a, b in small.result.cycles:
        tools = {t.get("id") for t in (by_id[a].get("prompt_data") or {}).get("tool_functions") or []}
        assert b in tools, desc
        target = by_id[b]
        if target.get("origin"):
            assert target["origin"]["object_id"] == a, desc
        else:
            nodes = target["function_data"]["nodes"].values()
            assert any((n.get("function") or {}).get("function_id") == a for n in nodes), desc


def test_small_versions_point_at_real_transactions(small: Seeded) -> None:
    inv = small.after
    xacts = {o["id"]: o["_xact_id"] for kind in ("prompt", "function") for o in inv.objects[kind]}
    pins = 0
    for p in inv.objects["prompt"]:
        origin = (p.get("prompt_data") or {}).get("origin")
        if origin:
            assert origin["prompt_version"] == xacts[origin["prompt_id"]]
            pins += 1
    for e in inv.objects["experiment"]:
        if e.get("parameters_id"):
            assert e["parameters_version"] == xacts[e["parameters_id"]]
            pins += 1
    assert pins >= 4


def test_medium_counts_match_listing(medium: Seeded) -> None:
    _assert_counts_match(medium)
    assert medium.result.counts["project"] == PROFILES["medium"].projects
    assert 300 <= medium.result.total < 1000
    refs = list(find_references(medium.after))
    assert REQUIRED_REFERENCES - {r.kind for r in refs} == set()
    assert dangling(medium.after, refs) == []


# --------------------------------------------------------------------------- determinism

VOLATILE = {"created", "updated_at", "_xact_id", "position", "last_active_at", "preview_name"}
XACT_FIELDS = {"prompt_version", "version", "parameters_version", "xact_id", "dataset_version"}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _normalized(seeded: Seeded) -> dict[str, list[str]]:
    res, inv = seeded.result, seeded.after
    labels = {obj.id: key for key, obj in res.objects.items()}
    labels[res.org_id] = "ORG"
    labels.update({uid: f"USER{n}" for n, uid in enumerate(res.user_ids)})
    labels.update({r["id"]: f"SYSROLE:{r['name']}" for r in inv.objects["role"] if r.get("org_id") is None})

    def norm(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: norm(v, k) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, str):
            if value in labels:
                return labels[value]
            if key in XACT_FIELDS:
                return "XACT"
            return UUID_RE.sub("UUID", value)
        return value

    out = {}
    for kind, objs in inv.objects.items():
        if kind == "user":  # the org's own members, not seeded
            continue
        mine = [json.dumps(norm(o), sort_keys=True, ensure_ascii=False) for o in objs if o["id"] in labels]
        out[kind] = sorted(mine)
    return out


def test_same_seed_same_contents(small: Seeded, sandbox_server: Any) -> None:
    again = _seed(sandbox_server, "small", 7)
    a, b = _normalized(small), _normalized(again)
    assert a.keys() == b.keys()
    for kind in a:
        assert a[kind] == b[kind], kind
    assert again.result.counts == small.result.counts
    other = build_plan("small", 8)
    assert {op.name for op in other.ops.values()} != {op.name for op in build_plan("small", 7).ops.values()}


# --------------------------------------------------------------------------- API errors


async def test_bad_arguments_raise_input_errors(sandbox_server: Any) -> None:
    with pytest.raises(SeedInputError, match="profile"):
        await seed_org(sandbox_server.url, "key", profile="huge")
    with pytest.raises(SeedInputError, match="url"):
        await seed_org("ftp://example.com", "key")
    with pytest.raises(SeedInputError, match="api_key"):
        await seed_org(sandbox_server.url, " ")
    with pytest.raises(SeedError) as info:
        await seed_org(sandbox_server.url, "not-a-key-" + uuid.uuid4().hex)
    assert info.value.status == 401


def test_refs_are_hashable_placeholders() -> None:
    assert Ref("a") == Ref("a", "id") and {Ref("a"): 1}[Ref("a")] == 1


def test_events_phase_orders_ops_with_after() -> None:
    # The dataset hook plans its rows and the read-back of their version itself.
    plan = build_plan("small", 0)
    ds = "p0.ds0"
    level_of = {op.key: n for n, level in enumerate(plan.levels()) for op in level}
    assert level_of[ds] < level_of[f"{ds}.events"] < level_of[f"{ds}.version"]


# --------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "braintrust_migrate", "sandbox", "seed", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_cli_seeds_and_prints_counts(sandbox_server: Any) -> None:
    org = sandbox_server.create_org(f"seed-cli-{uuid.uuid4().hex[:8]}")
    proc = _cli("--url", sandbox_server.url, "--api-key", org.api_key, "--profile", "small", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("seeded org")
    counts = dict(line.split() for line in lines[1:] if line.strip() and not line.startswith("note"))
    assert int(counts["project"]) == PROFILES["small"].projects
    assert int(counts["function"]) > 10


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--profile", "huge"), "profile"),
        (("--seed", "abc"), "--seed"),
        (("--seed", "-1"), "--seed"),
        (("--concurrency", "0"), "--concurrency"),
        (("--url", "not a url"), "url"),
        (("--url", ""), "--url"),
        (("--api-key", ""), "--api-key"),
    ],
)
def test_cli_rejects_bad_input(sandbox_server: Any, args: tuple[str, ...], needle: str) -> None:
    base = {"--url": sandbox_server.url, "--api-key": "whatever", "--profile": "small", "--seed": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = [x for kv in base.items() for x in kv]
    proc = _cli(*argv)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and needle in err[0], proc.stderr


def test_cli_rejects_a_bad_key_and_an_unreachable_url(sandbox_server: Any) -> None:
    proc = _cli("--url", sandbox_server.url, "--api-key", "nope-" + uuid.uuid4().hex)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "401" in proc.stderr
    proc = _cli("--url", "http://127.0.0.1:9", "--api-key", "k")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cli_json_summary(sandbox_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from braintrust_migrate.sandbox.seed.cli import run_seed

    org = sandbox_server.create_org(f"seed-json-{uuid.uuid4().hex[:8]}")
    run_seed(sandbox_server.url, org.api_key, "small", "2", "", "4", True)
    summary = json.loads(capsys.readouterr().out)
    assert summary["profile"] == "small" and summary["seed"] == 2 and summary["org_id"] == org.id
    assert summary["counts"]["project"] == PROFILES["small"].projects
    assert summary["total"] == sum(summary["counts"].values())


async def test_a_key_with_several_orgs_needs_org_name(sandbox_server: Any) -> None:
    home = sandbox_server.create_org(f"seed-home-{uuid.uuid4().hex[:8]}")
    other = sandbox_server.create_org(f"seed-other-{uuid.uuid4().hex[:8]}")
    sandbox_server.grant_org(home.api_key, other.name)
    with pytest.raises(SeedInputError, match="several organizations"):
        await seed_org(sandbox_server.url, home.api_key)
    result = await seed_org(sandbox_server.url, home.api_key, org_name=other.name)
    assert result.org_id == other.id
    async with SeedClient(sandbox_server.url, other.api_key) as client:
        inv = await fetch_inventory(client)
    listed = {o["id"] for o in inv.objects["project"]}
    assert set(result.ids["project"]) <= listed
    assert set(result.ids["role"]) <= {r["id"] for r in inv.objects["role"]}
