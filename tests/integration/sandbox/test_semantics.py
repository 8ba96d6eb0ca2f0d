"""Create / patch / version semantics the spec describes, type by type."""

from __future__ import annotations

from typing import Any

from braintrust_migrate.sandbox.objects.admin import system_role_id
from tests.integration.sandbox.factories import PROMPT_DATA
from tests.integration.sandbox.helpers import Api


def test_patch_deep_merges_objects_replaces_arrays_and_ignores_nulls(api: Api, project: dict) -> None:
    exp = api.post(
        "/v1/experiment",
        {
            "project_id": project["id"],
            "name": "e",
            "description": "keep",
            "tags": ["a", "b"],
            "metadata": {"a": 1, "b": {"c": 1}},
        },
    )
    patched = api.patch(
        f"/v1/experiment/{exp['id']}",
        {"metadata": {"b": {"d": 2}, "a": None}, "tags": ["z"], "description": None},
    )
    assert patched["metadata"] == {"a": 1, "b": {"c": 1, "d": 2}}
    assert patched["tags"] == ["z"]
    assert patched["description"] == "keep"  # "we do not support ... setting them to null"
    assert api.get(f"/v1/experiment/{exp['id']}") == patched


def test_project_settings_only_by_patch_and_replaced_whole(api: Api) -> None:
    project = api.post("/v1/project", {"name": "p", "settings": {"comparison_key": "ignored"}})
    assert project["settings"] is None  # not part of CreateProject
    pid = project["id"]
    first = api.patch(
        f"/v1/project/{pid}", {"settings": {"comparison_key": "input", "disable_realtime_queries": True}}
    )
    assert first["settings"] == {"comparison_key": "input", "disable_realtime_queries": True}
    second = api.patch(f"/v1/project/{pid}", {"settings": {"comparison_key": "output"}})
    assert second["settings"] == {"comparison_key": "output"}
    exp = api.post("/v1/experiment", {"project_id": pid, "name": "baseline"})
    third = api.patch(f"/v1/project/{pid}", {"settings": {"baseline_experiment_id": exp["id"]}})
    assert third["settings"]["baseline_experiment_id"] == exp["id"]


def test_server_set_fields_cannot_be_chosen(api: Api, sandbox_org: Any) -> None:
    forced = {
        "name": "p",
        "id": "00000000-0000-4000-8000-000000000001",
        "created": "2001-01-01T00:00:00Z",
        "org_id": "00000000-0000-4000-8000-000000000002",
        "user_id": "00000000-0000-4000-8000-000000000003",
    }
    project = api.post("/v1/project", forced)
    assert project["id"] != forced["id"] and project["created"] != forced["created"]
    assert project["org_id"] == sandbox_org.id and project["user_id"] == sandbox_org.user_id
    assert project["created"].endswith("Z")
    tag = api.post("/v1/project_tag", {"project_id": project["id"], "name": "t", "position": "0|aaaaaa:"})
    assert tag["position"] != "0|aaaaaa:"
    prompt = api.post(
        "/v1/prompt", {"project_id": project["id"], "name": "n", "slug": "s", "metadata": {"x": 1}}
    )
    assert prompt["metadata"] is None  # not settable per CreatePrompt


def test_ranked_positions_increase(api: Api, project: dict) -> None:
    positions = [
        api.post("/v1/project_score", {"project_id": project["id"], "name": f"s{i}", "score_type": "slider"})[
            "position"
        ]
        for i in range(3)
    ]
    assert positions == sorted(positions) and len(set(positions)) == 3


def test_experiment_defaults_and_ensure_new(api: Api, project: dict) -> None:
    pid = project["id"]
    first = api.post(
        "/v1/experiment",
        {"project_id": pid, "name": "run", "repo_info": {"commit": "abc123", "branch": "main"}},
    )
    assert first["public"] is False and first["commit"] == "abc123"
    same = api.post("/v1/experiment", {"project_id": pid, "name": "run"})
    assert same["id"] == first["id"]
    fresh = api.post("/v1/experiment", {"project_id": pid, "name": "run", "ensure_new": True})
    assert fresh["id"] != first["id"] and fresh["name"] != "run" and fresh["name"].startswith("run")
    unnamed = [api.post("/v1/experiment", {"project_id": pid, "name": None})["name"] for _ in range(2)]
    assert len(set(unnamed)) == 2 and all(unnamed)
    patched = api.patch(f"/v1/experiment/{first['id']}", {"repo_info": {"commit": "def456"}})
    assert patched["commit"] == "def456" and patched["repo_info"]["branch"] == "main"


def test_dataset_url_slug(api: Api, project: dict) -> None:
    ds = api.post("/v1/dataset", {"project_id": project["id"], "name": "Golden Set v2"})
    assert ds["url_slug"] == "golden-set-v2"


def test_prompt_versions(api: Api, project: dict) -> None:
    base = {"project_id": project["id"], "name": "Greeter", "slug": "greeter"}
    v1 = api.post("/v1/prompt", {**base, "prompt_data": PROMPT_DATA})
    assert v1["log_id"] == "p" and v1["_xact_id"].isdigit()
    v2 = api.patch(f"/v1/prompt/{v1['id']}", {"description": "second"})
    v3 = api.put("/v1/prompt", {**base, "description": "third"})
    xacts = [int(v["_xact_id"]) for v in (v1, v2, v3)]
    assert xacts == sorted(xacts) and len(set(xacts)) == 3
    assert v3["id"] == v1["id"] and v3["prompt_data"] is None  # PUT replaced the whole prompt

    item = f"/v1/prompt/{v1['id']}"
    assert api.get(item, version=v1["_xact_id"]) == v1
    assert api.get(item, version=v2["_xact_id"])["description"] == "second"
    assert api.get(item) == v3
    assert api.list("/v1/prompt", version=v1["_xact_id"]) == [v1]
    api.fails(404, "GET", item, params={"version": str(int(v1["_xact_id"]) - 1)})
    api.fails(400, "GET", item, params={"version": "81cd05ee665fdfb3"})
    # POST of an existing slug returns it unmodified: no new version
    assert api.post("/v1/prompt", {**base, "description": "ignored"}) == v3


def test_function_versions_and_environment_param(api: Api, project: dict) -> None:
    body = {
        "project_id": project["id"],
        "name": "Tool",
        "slug": "tool",
        "function_data": {
            "type": "code",
            "data": {"type": "inline", "runtime_context": {"runtime": "node", "version": "20"}, "code": "x"},
        },
    }
    f1 = api.post("/v1/function", body)
    f2 = api.patch(f"/v1/function/{f1['id']}", {"description": "v2"})
    assert int(f2["_xact_id"]) > int(f1["_xact_id"])
    assert api.get(f"/v1/function/{f1['id']}", version=f1["_xact_id"])["description"] is None
    api.fails(400, "GET", f"/v1/function/{f1['id']}", params={"environment": "prod"})  # no such environment
    api.post("/environment", {"name": "Production", "slug": "prod"})
    api.fails(404, "GET", f"/v1/function/{f1['id']}", params={"environment": "prod"})
    api.fails(
        400, "GET", f"/v1/function/{f1['id']}", params={"environment": "prod", "version": f1["_xact_id"]}
    )
    api.fails(400, "GET", "/v1/function", params={"environment": "prod"})


def test_patch_that_breaks_the_schema_is_refused(api: Api, project: dict) -> None:
    f = api.post(
        "/v1/function",
        {
            "project_id": project["id"],
            "name": "G",
            "slug": "g",
            "function_data": {"type": "global", "name": "Levenshtein"},
        },
    )
    # deep-merging a code payload into a "global" function would not be a valid Function
    error = api.fails(
        400, "PATCH", f"/v1/function/{f['id']}", json={"function_data": {"type": "remote_eval"}}
    )
    assert "function_data" in error


def test_role_permissions_and_inheritance_deltas(api: Api) -> None:
    viewer = system_role_id("Viewer")
    base = api.post("/v1/role", {"name": "Base", "member_permissions": [{"permission": "read"}]})
    role = api.post(
        "/v1/role",
        {
            "name": "Writer",
            "member_permissions": [{"permission": "read"}, {"permission": "read"}],
            "member_roles": [viewer],
        },
    )
    assert role["member_permissions"] == [{"permission": "read", "restrict_object_type": None}]
    item = f"/v1/role/{role['id']}"
    role = api.patch(
        item,
        {
            "add_member_permissions": [
                {"permission": "update", "restrict_object_type": "dataset"},
                {"permission": "read"},
            ],
            "add_member_roles": [base["id"]],
        },
    )
    assert role["member_permissions"] == [
        {"permission": "read", "restrict_object_type": None},
        {"permission": "update", "restrict_object_type": "dataset"},
    ]
    assert role["member_roles"] == [viewer, base["id"]]
    role = api.patch(
        item, {"remove_member_permissions": [{"permission": "read"}], "remove_member_roles": [viewer]}
    )
    assert role["member_permissions"] == [{"permission": "update", "restrict_object_type": "dataset"}]
    assert role["member_roles"] == [base["id"]]
    assert "itself" in api.fails(400, "PATCH", item, json={"add_member_roles": [role["id"]]})
    missing = "00000000-0000-4000-8000-00000000abcd"
    assert "member_roles" in api.fails(400, "POST", "/v1/role", json={"name": "X", "member_roles": [missing]})


def test_system_roles_are_read_only(api: Api) -> None:
    owner = system_role_id("Owner")
    role = api.get(f"/v1/role/{owner}")
    assert role["org_id"] is None and role["name"] == "Owner"
    api.fails(403, "PATCH", f"/v1/role/{owner}", json={"description": "mine"})
    api.fails(403, "DELETE", f"/v1/role/{owner}")
    # the org lists the system role, so creating one of that name returns it (see test_real_clients_q1)
    assert api.post("/v1/role", {"name": "Owner"})["id"] == owner


def test_group_member_deltas(api: Api) -> None:
    users = api.list("/v1/user")
    u1, u2 = users[0]["id"], users[1]["id"]
    parent = api.post("/v1/group", {"name": "parent"})
    group = api.post("/v1/group", {"name": "team", "member_users": [u1]})
    item = f"/v1/group/{group['id']}"
    group = api.patch(item, {"add_member_users": [u2, u1], "add_member_groups": [parent["id"]]})
    assert group["member_users"] == [u1, u2] and group["member_groups"] == [parent["id"]]
    group = api.patch(item, {"remove_member_users": [u1], "remove_member_groups": [parent["id"]]})
    assert group["member_users"] == [u2] and group["member_groups"] == []
    stranger = "00000000-0000-4000-8000-00000000beef"
    assert "add_member_users" in api.fails(400, "PATCH", item, json={"add_member_users": [stranger]})
    assert "itself" in api.fails(400, "PATCH", item, json={"add_member_groups": [group["id"]]})
    api.delete(f"/v1/group/{parent['id']}")


def test_ai_secret_value_is_never_returned(api: Api) -> None:
    secret = "sk-live-very-secret-value-1234"
    created = api.post("/v1/ai_secret", {"name": "OPENAI_API_KEY", "type": "openai", "secret": secret})
    item = f"/v1/ai_secret/{created['id']}"
    responses = [created, api.get(item), *api.list("/v1/ai_secret")]
    assert created["preview_secret"] and secret not in created["preview_secret"]
    kept = api.put("/v1/ai_secret", {"name": "OPENAI_API_KEY", "type": "openai", "metadata": {"m": 1}})
    assert kept["preview_secret"] == created["preview_secret"]  # PUT without secret keeps the old value
    changed = api.patch(item, {"secret": "sk-live-another-value-9876"})
    assert changed["preview_secret"] != created["preview_secret"]
    responses += [kept, changed, api.delete("/v1/ai_secret", {"name": "OPENAI_API_KEY"})]
    for body in responses:
        assert (
            "secret" not in body and secret not in str(body) and "sk-live-another-value-9876" not in str(body)
        )
    api.fails(404, "GET", item)
    api.fails(404, "DELETE", "/v1/ai_secret", json={"name": "OPENAI_API_KEY"})


def test_env_var_value_is_never_returned_and_patch_needs_name(api: Api, project: dict) -> None:
    body = {
        "object_type": "project",
        "object_id": project["id"],
        "name": "DB_URL",
        "value": "postgres://secret",
    }
    created = api.post("/v1/env_var", body)
    item = f"/v1/env_var/{created['id']}"
    assert created["secret_category"] == "env_var"
    assert "name" in api.fails(400, "PATCH", item, json={"value": "x"})
    renamed = api.patch(item, {"name": "DATABASE_URL", "value": "postgres://other"})
    assert renamed["name"] == "DATABASE_URL"
    for response in (created, renamed, api.get(item), *api.list("/v1/env_var")):
        assert "value" not in response and "postgres://" not in str(response)


def test_view_addressing_rules(api: Api, project: dict) -> None:
    pid = project["id"]
    view = api.post(
        "/v1/view",
        {"object_type": "project", "object_id": pid, "view_type": None, "name": "v", "deleted_at": None},
    )
    assert view["view_type"] is None  # the enum lists null (spec bug patched: honoured)
    item = f"/v1/view/{view['id']}"
    api.fails(400, "GET", item)  # object_type and object_id are required query params
    api.fails(404, "GET", item, params={"object_type": "experiment", "object_id": pid})
    api.fails(400, "PATCH", item, json={"name": "x"})  # PatchView requires object_type/object_id
    renamed = api.patch(
        item, {"object_type": "project", "object_id": pid, "name": "renamed", "view_type": "logs"}
    )
    assert (
        renamed["name"] == "renamed"
        and renamed["view_type"] == "logs"
        and renamed["user_id"] == view["user_id"]
    )
    api.fails(400, "DELETE", item)  # DeleteView body required
    api.delete(item, {"object_type": "project", "object_id": pid})


def test_acl_rules(api: Api, project: dict, sandbox_org: Any) -> None:
    pid = project["id"]
    groups = {g["name"]: g["id"] for g in api.list("/v1/group")}
    user = api.list("/v1/user")[0]["id"]
    base = {"object_type": "project", "object_id": pid}
    acl = api.post("/v1/acl", {**base, "group_id": groups["Engineers"], "permission": "update"})
    assert acl["_object_org_id"] == sandbox_org.id
    assert api.post("/v1/acl", {**base, "group_id": groups["Engineers"], "permission": "update"}) == acl
    role_acl = api.post("/v1/acl", {**base, "user_id": user, "role_id": system_role_id("Viewer")})
    for bad in (
        {**base, "permission": "read"},
        {**base, "user_id": user, "group_id": groups["Viewers"], "permission": "read"},
        {**base, "user_id": user},
        {**base, "user_id": user, "permission": "read", "role_id": system_role_id("Viewer")},
        {**base, "user_id": user, "role_id": system_role_id("Viewer"), "restrict_object_type": "dataset"},
    ):
        api.fails(400, "POST", "/v1/acl", json=bad)
    assert {a["id"] for a in api.list("/v1/acl", **base)} == {acl["id"], role_acl["id"]}
    assert [a["id"] for a in api.list("/v1/acl", **base, permission="update")] == [acl["id"]]
    assert [a["id"] for a in api.list("/v1/acl", **base, user_id=user)] == [role_acl["id"]]
    api.fails(400, "GET", "/v1/acl", params={"object_type": "project"})

    org_acls = api.ok("GET", "/v1/acl/list_org")
    assert isinstance(org_acls, list) and len(org_acls) == 5  # 3 built-in group grants + 2
    assert [
        a["id"] for a in api.ok("GET", "/v1/acl/list_org", params={"object_id": pid, "user_id": user})
    ] == [role_acl["id"]]

    deleted = api.delete("/v1/acl", {**base, "group_id": groups["Engineers"], "permission": "update"})
    assert deleted["id"] == acl["id"]
    api.fails(
        404, "DELETE", "/v1/acl", json={**base, "group_id": groups["Engineers"], "permission": "update"}
    )
    assert api.delete(f"/v1/acl/{role_acl['id']}")["id"] == role_acl["id"]


def test_acl_batch_update_is_idempotent(api: Api, project: dict) -> None:
    groups = {g["name"]: g["id"] for g in api.list("/v1/group")}
    item = {
        "object_type": "project",
        "object_id": project["id"],
        "group_id": groups["Viewers"],
        "permission": "read",
    }
    out = api.post("/v1/acl/batch_update", {"add_acls": [item, item]})
    assert len(out["added_acls"]) == 1 and out["removed_acls"] == []
    again = api.post("/v1/acl/batch_update", {"add_acls": [item]})
    assert again == {"added_acls": [], "removed_acls": []}
    removed = api.post("/v1/acl/batch_update", {"remove_acls": [item, item]})
    assert [a["id"] for a in removed["removed_acls"]] == [out["added_acls"][0]["id"]]
    assert api.post("/v1/acl/batch_update", {}) == {"added_acls": [], "removed_acls": []}


def test_organization_endpoints(api: Api, sandbox_org: Any, sandbox_server: Any) -> None:
    orgs = api.list("/v1/organization")
    assert [o["id"] for o in orgs] == [sandbox_org.id]
    item = f"/v1/organization/{sandbox_org.id}"
    assert api.get(item)["name"] == sandbox_org.name
    patched = api.patch(item, {"image_rendering_mode": "blocked", "api_url": None})
    assert patched["image_rendering_mode"] == "blocked" and patched["name"] == sandbox_org.name
    other = sandbox_server.create_org(sandbox_org.name + "-other")
    assert "name" in api.fails(400, "PATCH", item, json={"name": other.name})
    api.fails(404, "GET", f"/v1/organization/{other.id}")


def test_org_members_invite_and_remove(
    api: Api, make_api: Any, sandbox_server: Any, sandbox_org: Any
) -> None:
    out = api.patch(
        "/v1/organization/members",
        {
            "invite_users": {
                "emails": ["new.person@example.net"],
                "group_name": "Viewers",
                "send_invite_emails": True,
            }
        },
    )
    assert out["status"] == "success" and out["org_id"] == sandbox_org.id
    [added] = out["added_users"]
    viewers = api.list("/v1/group", group_name="Viewers")[0]
    assert added["id"] in viewers["member_users"]
    assert api.get(f"/v1/user/{added['id']}")["email"] == "new.person@example.net"
    # users are global: the same email in another org is the same user
    other = sandbox_server.create_org(sandbox_org.name + "-b", users=["new.person@example.net"])
    assert make_api(other.api_key).list("/v1/user")[0]["id"] == added["id"]

    api.patch("/v1/organization/members", {"remove_users": {"emails": ["new.person@example.net"]}})
    assert added["id"] not in [u["id"] for u in api.list("/v1/user")]
    assert added["id"] not in api.list("/v1/group", group_name="Viewers")[0]["member_users"]
    api.fails(404, "GET", f"/v1/user/{added['id']}")
    again = api.patch("/v1/organization/members", {"invite_users": {"ids": [added["id"]]}})
    assert [u["id"] for u in again["added_users"]] == [added["id"]]
    error = api.fails(
        400, "PATCH", "/v1/organization/members", json={"remove_users": {"ids": [sandbox_org.user_id]}}
    )
    assert "owns this API key" in error
    api.fails(
        400,
        "PATCH",
        "/v1/organization/members",
        json={"invite_users": {"emails": ["x@y.z"], "group_name": "Nope"}},
    )


def test_service_accounts_tokens_and_api_keys(api: Api, make_api: Any, sandbox_org: Any) -> None:
    out = api.patch(
        "/v1/organization/members",
        {"invite_users": {"service_accounts": [{"name": "ci-bot", "token_name": "ci"}]}},
    )
    [bot] = out["added_users"]
    assert bot["api_key"] and bot["token_name"] == "ci"
    as_bot = make_api(bot["api_key"])
    assert as_bot.post("/v1/project", {"name": "made-by-bot"})["user_id"] == bot["id"]

    token = api.post("/v1/service_token", {"name": "deploy", "service_account_id": bot["id"]})
    assert token["key"] and token["service_account_id"] == bot["id"]
    assert "key" not in api.get(f"/v1/service_token/{token['id']}")
    rotated = api.put("/v1/service_token", {"name": "deploy", "service_account_id": bot["id"]})
    assert rotated["id"] == token["id"] and rotated["key"] != token["key"]
    make_api(token["key"]).fails(401, "GET", "/v1/project")
    assert make_api(rotated["key"]).list("/v1/project")
    api.delete("/v1/service_token", {"id": token["id"]})
    make_api(rotated["key"]).fails(401, "GET", "/v1/project")
    human = api.list("/v1/user", email="alice.nguyen@example.com")[0]["id"]
    api.fails(400, "POST", "/v1/service_token", json={"name": "x", "service_account_id": human})

    key = api.post("/v1/api_key", {"name": "laptop"})
    assert key["key"].startswith("sk-") and key["preview_name"].endswith(key["key"][-4:])
    assert key["user_id"] == sandbox_org.user_id and key["org_id"] == sandbox_org.id
    assert all("key" not in k for k in api.list("/v1/api_key"))
    assert make_api(key["key"]).list("/v1/organization")[0]["id"] == sandbox_org.id
    api.delete(f"/v1/api_key/{key['id']}")
    make_api(key["key"]).fails(401, "GET", "/v1/project")
