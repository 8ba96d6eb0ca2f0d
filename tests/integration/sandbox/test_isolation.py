"""Org isolation and keys that act in several orgs."""

from __future__ import annotations

from typing import Any

import pytest

from braintrust_migrate.sandbox.objects.model import TYPES
from tests.integration.sandbox.factories import CRUD_TYPES, World
from tests.integration.sandbox.helpers import Api
from tests.integration.sandbox.test_crud import locator, patch_body


@pytest.fixture
def two(make_api: Any, sandbox_orgs: Any) -> tuple[Api, Api]:
    return make_api(sandbox_orgs.source.api_key), make_api(sandbox_orgs.dest.api_key)


@pytest.mark.parametrize("type_name", CRUD_TYPES)
def test_objects_of_another_org_are_invisible(two: tuple[Api, Api], type_name: str) -> None:
    source, dest = two
    t = TYPES[type_name]
    obj = source.post(t.base, World(source).body(type_name, "secret-thing"))
    item = f"{t.base}/{obj['id']}"
    dest.fails(404, "GET", item, params=locator(type_name, obj))
    if t.has("patch"):
        dest.fails(404, "PATCH", item, json=patch_body(type_name, obj))
    if type_name == "view":
        dest.fails(404, "DELETE", item, json=locator(type_name, obj))
        assert dest.list(t.base, **locator(type_name, obj)) == []
    else:
        dest.fails(404, "DELETE", item)
        assert obj["id"] not in [o["id"] for o in dest.list(t.base)]
        assert dest.list(t.base, ids=[obj["id"]]) == []
    assert source.get(item, **locator(type_name, obj))["id"] == obj["id"]  # untouched


def test_same_names_in_two_orgs_are_two_objects(two: tuple[Api, Api]) -> None:
    source, dest = two
    a = source.post("/v1/project", {"name": "shared"})
    b = dest.post("/v1/project", {"name": "shared"})
    assert a["id"] != b["id"] and a["org_id"] != b["org_id"]


def test_anchors_in_another_org_are_refused(two: tuple[Api, Api], sandbox_orgs: Any) -> None:
    source, dest = two
    foreign = source.post("/v1/project", {"name": "theirs"})
    foreign_ds = source.post("/v1/dataset", {"project_id": foreign["id"], "name": "ds"})
    fid = foreign["id"]
    cases = [
        ("/v1/experiment", {"project_id": fid, "name": "e"}, "project_id"),
        ("/v1/dataset", {"project_id": fid, "name": "d"}, "project_id"),
        ("/v1/prompt", {"project_id": fid, "name": "p", "slug": "p"}, "project_id"),
        ("/v1/project_tag", {"project_id": fid, "name": "t"}, "project_id"),
        (
            "/v1/view",
            {"object_type": "project", "object_id": fid, "view_type": "logs", "name": "v"},
            "object_id",
        ),
        (
            "/v1/acl",
            {"object_type": "project", "object_id": fid, "user_id": fid, "permission": "read"},
            "object_id",
        ),
        ("/v1/env_var", {"object_type": "project", "object_id": fid, "name": "X"}, "object_id"),
        (
            "/v1/env_var",
            {"object_type": "organization", "object_id": sandbox_orgs.source.id, "name": "X"},
            "object_id",
        ),
        ("/v1/dataset_snapshot", {"dataset_id": foreign_ds["id"], "name": "s", "xact_id": "1"}, "dataset_id"),
    ]
    for path, body, field in cases:
        assert field in dest.fails(403, "POST", path, json=body), path
    assert dest.list("/v1/acl", object_type="project", object_id=fid) == []


def test_references_to_another_org_are_refused(two: tuple[Api, Api]) -> None:
    source, dest = two
    sp = source.post("/v1/project", {"name": "src"})
    s_exp = source.post("/v1/experiment", {"project_id": sp["id"], "name": "e"})
    s_ds = source.post("/v1/dataset", {"project_id": sp["id"], "name": "d"})
    s_role = source.post("/v1/role", {"name": "r"})
    s_group = source.post("/v1/group", {"name": "g"})
    s_fn = source.post(
        "/v1/function",
        {"project_id": sp["id"], "name": "f", "slug": "f", "function_data": {"type": "prompt"}},
    )
    dp = dest.post("/v1/project", {"name": "dst"})
    d_exp = dest.post("/v1/experiment", {"project_id": dp["id"], "name": "mine"})
    tool = {"type": "function", "id": s_fn["id"]}
    cases = [
        (
            "POST",
            "/v1/experiment",
            {"project_id": dp["id"], "name": "x", "dataset_id": s_ds["id"]},
            "dataset_id",
        ),
        (
            "POST",
            "/v1/experiment",
            {"project_id": dp["id"], "name": "x", "base_exp_id": s_exp["id"]},
            "base_exp_id",
        ),
        ("PATCH", f"/v1/experiment/{d_exp['id']}", {"dataset_id": s_ds["id"]}, "dataset_id"),
        ("POST", "/v1/role", {"name": "x", "member_roles": [s_role["id"]]}, "member_roles[0]"),
        ("POST", "/v1/group", {"name": "x", "member_groups": [s_group["id"]]}, "member_groups[0]"),
        (
            "PATCH",
            f"/v1/project/{dp['id']}",
            {"settings": {"baseline_experiment_id": s_exp["id"]}},
            "baseline",
        ),
        (
            "POST",
            "/v1/prompt",
            {"project_id": dp["id"], "name": "p", "slug": "p", "prompt_data": {"tool_functions": [tool]}},
            "prompt_data.tool_functions[0].id",
        ),
        (
            "POST",
            "/v1/acl",
            {
                "object_type": "project",
                "object_id": dp["id"],
                "group_id": s_group["id"],
                "permission": "read",
            },
            "group_id",
        ),
        (
            "POST",
            "/v1/acl",
            {
                "object_type": "project",
                "object_id": dp["id"],
                "group_id": _group(dest),
                "role_id": s_role["id"],
            },
            "role_id",
        ),
    ]
    for method, path, body, field in cases:
        assert field in dest.fails(400, method, path, json=body), (method, path)
    # a dangling id in a loosely-typed nested reference is accepted (the hosted API does not resolve it) ...
    dangling = {"type": "function", "id": "00000000-0000-4000-8000-000000000123"}
    dest.post(
        "/v1/prompt",
        {"project_id": dp["id"], "name": "q", "slug": "q", "prompt_data": {"tool_functions": [dangling]}},
    )
    # ... and same-org references are fine
    d_ds = dest.post("/v1/dataset", {"project_id": dp["id"], "name": "d"})
    dest.post(
        "/v1/experiment",
        {"project_id": dp["id"], "name": "ok", "dataset_id": d_ds["id"], "base_exp_id": d_exp["id"]},
    )


def _group(api: Api) -> str:
    return api.list("/v1/group", group_name="Viewers")[0]["id"]


def test_users_of_another_org_are_not_members(two: tuple[Api, Api], sandbox_server: Any) -> None:
    source, dest = two
    outsider = sandbox_server.create_org("outsiders-" + _group(source)[:8], users=["only.here@example.io"])
    del outsider
    lonely = source.patch("/v1/organization/members", {"invite_users": {"emails": ["lonely@example.io"]}})
    uid = lonely["added_users"][0]["id"]
    dest.fails(404, "GET", f"/v1/user/{uid}")
    assert uid not in [u["id"] for u in dest.list("/v1/user")]
    assert "member_users" in dest.fails(400, "POST", "/v1/group", json={"name": "g", "member_users": [uid]})
    dp = dest.post("/v1/project", {"name": "p"})
    acl = {"object_type": "project", "object_id": dp["id"], "user_id": uid, "permission": "read"}
    assert "user_id" in dest.fails(400, "POST", "/v1/acl", json=acl)
    view = {"object_type": "project", "object_id": dp["id"], "view_type": "logs", "name": "v", "user_id": uid}
    assert "user_id" in dest.fails(400, "POST", "/v1/view", json=view)


def test_multi_org_key(sandbox_server: Any, sandbox_orgs: Any, make_api: Any) -> None:
    source, dest = sandbox_orgs.source, sandbox_orgs.dest
    sandbox_server.grant_org(source.api_key, dest.name)
    both = make_api(source.api_key)
    assert {o["id"] for o in both.list("/v1/organization")} == {source.id, dest.id}

    error = both.fails(400, "POST", "/v1/project", json={"name": "where?"})
    assert "org_name" in error and source.name in error and dest.name in error
    in_dest = both.post("/v1/project", {"name": "here", "org_name": dest.name})
    in_source = both.post("/v1/project", {"name": "here", "org_name": source.name})
    assert in_dest["org_id"] == dest.id and in_source["org_id"] == source.id

    # lists: org_name narrows ("Filter search results to within a particular organization")
    assert {p["id"] for p in both.list("/v1/project")} == {in_dest["id"], in_source["id"]}
    assert [p["id"] for p in both.list("/v1/project", org_name=dest.name)] == [in_dest["id"]]
    assert "org_name" in both.fails(403, "GET", "/v1/project", params={"org_name": "no-such-org"})
    assert "org_name" in both.fails(403, "POST", "/v1/role", json={"name": "r", "org_name": "no-such-org"})

    # project-scoped creates take the org from the project, no org_name needed
    exp = both.post("/v1/experiment", {"project_id": in_dest["id"], "name": "e"})
    assert exp["project_id"] == in_dest["id"]
    both.fails(400, "POST", "/v1/ai_secret", json={"name": "K"})
    both.post("/v1/ai_secret", {"name": "K", "org_name": dest.name})
    both.fails(400, "DELETE", "/v1/ai_secret", json={"name": "K"})
    both.delete("/v1/ai_secret", {"name": "K", "org_name": dest.name})
    both.fails(400, "PATCH", "/v1/organization/members", json={"invite_users": {"emails": ["a@b.c"]}})
    out = both.patch("/v1/organization/members", {"org_id": dest.id, "invite_users": {"emails": ["a@b.c"]}})
    assert out["org_id"] == dest.id

    # the dest-only key still sees only dest
    assert [o["id"] for o in make_api(dest.api_key).list("/v1/organization")] == [dest.id]
