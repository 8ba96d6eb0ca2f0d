"""List endpoints: ordering, pagination both ways, limits, ids and every filter the spec lists."""

from __future__ import annotations

from typing import Any

import pytest

from braintrust_migrate.sandbox.objects.model import TYPES
from tests.integration.sandbox.factories import CRUD_TYPES, World
from tests.integration.sandbox.helpers import Api
from tests.integration.sandbox.test_crud import list_params

CURSOR_TYPES = [n for n in CRUD_TYPES if "starting_after" in TYPES[n].list_params]


def make_many(api: Api, type_name: str, count: int) -> list[dict[str, Any]]:
    world = World(api)
    return [api.post(TYPES[type_name].base, world.body(type_name, f"item-{i}")) for i in range(count)]


def ids(objects: list[dict[str, Any]]) -> list[str]:
    return [o["id"] for o in objects]


@pytest.mark.parametrize("type_name", CURSOR_TYPES)
def test_pagination_both_directions(api: Api, type_name: str) -> None:
    base = TYPES[type_name].base
    created = make_many(api, type_name, 5)
    newest_first = ids(created)[::-1]
    params: dict[str, Any] = {"ids": ids(created), **list_params(type_name, created[0])}

    assert ids(api.list(base, **params)) == newest_first

    # forward: starting_after the last item of each page
    pages, cursor = [], None
    while True:
        page = api.list(base, limit=2, **params, **({"starting_after": cursor} if cursor else {}))
        if not page:
            break
        pages.append(ids(page))
        cursor = page[-1]["id"]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]

    # backward: ending_before the first item of each page, from the oldest
    back = api.list(base, limit=2, ending_before=newest_first[4], **params)
    assert ids(back) == newest_first[2:4]
    back = api.list(base, limit=2, ending_before=newest_first[2], **params)
    assert ids(back) == newest_first[0:2]
    assert api.list(base, limit=2, ending_before=newest_first[0], **params) == []
    assert ids(api.list(base, ending_before=newest_first[3], **params)) == newest_first[0:3]

    assert api.list(base, limit=0, **params) == []
    error = api.fails(
        400,
        "GET",
        base,
        params={**params, "starting_after": newest_first[0], "ending_before": newest_first[1]},
    )
    assert "starting_after" in error and "ending_before" in error


def test_bad_list_parameters(api: Api) -> None:
    assert "limit" in api.fails(400, "GET", "/v1/project", params={"limit": "ten"})
    assert "limit" in api.fails(400, "GET", "/v1/project", params={"limit": -1})
    assert "ids" in api.fails(400, "GET", "/v1/project", params={"ids": "not-a-uuid"})
    assert "starting_after" in api.fails(400, "GET", "/v1/project", params={"starting_after": "nope"})
    unknown = "00000000-0000-4000-8000-000000000000"
    assert "starting_after" in api.fails(400, "GET", "/v1/project", params={"starting_after": unknown})
    assert "project_id" in api.fails(400, "GET", "/v1/dataset", params={"project_id": "x"})
    assert "score_type" in api.fails(400, "GET", "/v1/project_score", params={"score_type": "nope"})


def test_unknown_query_parameters_are_ignored(api: Api, project: dict) -> None:
    api.post("/v1/project", {"name": "second"})
    assert len(api.list("/v1/project", colour="blue")) == 2


def test_project_filters(api: Api) -> None:
    a = api.post("/v1/project", {"name": "alpha"})
    api.post("/v1/project", {"name": "beta"})
    assert ids(api.list("/v1/project", project_name="alpha")) == [a["id"]]
    assert api.list("/v1/project", project_name="nope") == []


def test_project_scoped_filters(api: Api) -> None:
    p1 = api.post("/v1/project", {"name": "p1"})
    p2 = api.post("/v1/project", {"name": "p2"})
    e1 = api.post("/v1/experiment", {"project_id": p1["id"], "name": "same"})
    e2 = api.post("/v1/experiment", {"project_id": p2["id"], "name": "same"})
    api.post("/v1/experiment", {"project_id": p2["id"], "name": "other"})
    assert ids(api.list("/v1/experiment", project_id=p1["id"])) == [e1["id"]]
    assert ids(api.list("/v1/experiment", project_name="p1")) == [e1["id"]]
    assert ids(api.list("/v1/experiment", experiment_name="same")) == [e2["id"], e1["id"]]
    assert ids(api.list("/v1/experiment", experiment_name="same", project_id=p2["id"])) == [e2["id"]]

    d = api.post("/v1/dataset", {"project_id": p2["id"], "name": "ds"})
    assert ids(api.list("/v1/dataset", dataset_name="ds", project_name="p2")) == [d["id"]]
    assert api.list("/v1/dataset", project_id=p1["id"]) == []

    pr = api.post("/v1/prompt", {"project_id": p1["id"], "name": "Greeter", "slug": "greet"})
    assert ids(api.list("/v1/prompt", slug="greet")) == [pr["id"]]
    assert ids(api.list("/v1/prompt", prompt_name="Greeter", project_name="p1")) == [pr["id"]]
    assert api.list("/v1/prompt", slug="greet", project_id=p2["id"]) == []

    s1 = api.post("/v1/project_score", {"project_id": p1["id"], "name": "acc", "score_type": "slider"})
    s2 = api.post("/v1/project_score", {"project_id": p1["id"], "name": "cat", "score_type": "categorical"})
    api.post("/v1/project_score", {"project_id": p2["id"], "name": "w", "score_type": "weighted"})
    assert ids(api.list("/v1/project_score", project_id=p1["id"], score_type="slider")) == [s1["id"]]
    assert ids(api.list("/v1/project_score", project_id=p1["id"], score_type=["slider", "categorical"])) == [
        s2["id"],
        s1["id"],
    ]
    assert ids(api.list("/v1/project_score", project_score_name="cat")) == [s2["id"]]
    t = api.post("/v1/project_tag", {"project_id": p2["id"], "name": "tag"})
    assert ids(api.list("/v1/project_tag", project_tag_name="tag", project_name="p2")) == [t["id"]]


@pytest.mark.parametrize(
    ("type_name", "extra"),
    [
        ("span_iframe", {"url": "https://x.example.com"}),
        ("mcp_server", {"url": "https://mcp.example.com"}),
        (
            "project_automation",
            {"config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}},
        ),
    ],
)
def test_lists_without_project_filter_ignore_project_id(api: Api, type_name: str, extra: dict) -> None:
    """The spec gives these lists no project_id filter: a client must filter client-side."""
    base = TYPES[type_name].base
    p1 = api.post("/v1/project", {"name": "p1"})
    p2 = api.post("/v1/project", {"name": "p2"})
    a = api.post(base, {"project_id": p1["id"], "name": "a", **extra})
    b = api.post(base, {"project_id": p2["id"], "name": "b", **extra})
    assert ids(api.list(base, project_id=p1["id"])) == [b["id"], a["id"]]
    assert ids(api.list(base, **{f"{type_name}_name": "a"})) == [a["id"]]


def test_dataset_snapshot_list_has_no_dataset_filter(api: Api, project: dict) -> None:
    d1 = api.post("/v1/dataset", {"project_id": project["id"], "name": "d1"})
    d2 = api.post("/v1/dataset", {"project_id": project["id"], "name": "d2"})
    s1 = api.post("/v1/dataset_snapshot", {"dataset_id": d1["id"], "name": "v1", "xact_id": "1"})
    s2 = api.post("/v1/dataset_snapshot", {"dataset_id": d2["id"], "name": "v1", "xact_id": "2"})
    assert s1["id"] != s2["id"]  # identity is (dataset_id, name)
    assert ids(api.list("/v1/dataset_snapshot", dataset_id=d1["id"])) == [s2["id"], s1["id"]]
    assert ids(api.list("/v1/dataset_snapshot", dataset_snapshot_name="v1")) == [s2["id"], s1["id"]]


def test_env_var_list_filters_and_no_cursors(api: Api, project: dict, sandbox_org: Any) -> None:
    a = api.post(
        "/v1/env_var", {"object_type": "project", "object_id": project["id"], "name": "A", "value": "1"}
    )
    b = api.post(
        "/v1/env_var", {"object_type": "organization", "object_id": sandbox_org.id, "name": "B", "value": "2"}
    )
    assert ids(api.list("/v1/env_var")) == [b["id"], a["id"]]
    assert ids(api.list("/v1/env_var", object_type="project")) == [a["id"]]
    assert ids(api.list("/v1/env_var", object_id=sandbox_org.id)) == [b["id"]]
    assert ids(api.list("/v1/env_var", env_var_name="A")) == [a["id"]]
    assert ids(api.list("/v1/env_var", limit=1)) == [b["id"]]
    # no cursors in the spec for env_var: the parameter is ignored like any unknown one
    assert ids(api.list("/v1/env_var", starting_after=b["id"])) == [b["id"], a["id"]]


def test_environment_list_filters_and_no_limit(api: Api) -> None:
    a = api.post("/environment", {"name": "Prod", "slug": "prod"})
    b = api.post("/environment", {"name": "Dev", "slug": "dev"})
    assert ids(api.list("/environment")) == [b["id"], a["id"]]
    assert ids(api.list("/environment", name="Prod")) == [a["id"]]
    assert ids(api.list("/environment", ids=[a["id"]])) == [a["id"]]
    assert ids(api.list("/environment", limit=1)) == [b["id"], a["id"]]  # no limit param in the spec


def test_role_group_name_filters_include_system_roles(api: Api) -> None:
    roles = api.list("/v1/role")
    system = [r for r in roles if r["org_id"] is None]
    assert {r["name"] for r in system} >= {"Owner", "Engineer", "Viewer"}
    custom = api.post("/v1/role", {"name": "Auditor"})
    assert ids(api.list("/v1/role", role_name="Auditor")) == [custom["id"]]
    assert [r["org_id"] for r in api.list("/v1/role", role_name="Owner")] == [None]
    assert [g["name"] for g in api.list("/v1/group", group_name="Owners")] == ["Owners"]


def test_view_list_needs_its_object(api: Api, project: dict) -> None:
    api.fails(400, "GET", "/v1/view")
    api.fails(400, "GET", "/v1/view", params={"object_type": "project"})
    pid = project["id"]
    v1 = api.post(
        "/v1/view", {"object_type": "project", "object_id": pid, "view_type": "experiments", "name": "a"}
    )
    v2 = api.post("/v1/view", {"object_type": "project", "object_id": pid, "view_type": "logs", "name": "b"})
    loc = {"object_type": "project", "object_id": pid}
    assert ids(api.list("/v1/view", **loc)) == [v2["id"], v1["id"]]
    assert ids(api.list("/v1/view", view_type="logs", **loc)) == [v2["id"]]
    assert ids(api.list("/v1/view", view_name="a", **loc)) == [v1["id"]]
    assert api.list("/v1/view", object_type="experiment", object_id=pid) == []


def test_user_filters(api: Api) -> None:
    api.patch(
        "/v1/organization/members",
        {"invite_users": {"emails": ["zed.one@example.org", "zoe.two@example.org"]}},
    )
    users = api.list("/v1/user")
    by_email = {u["email"]: u for u in users}
    assert {"zed.one@example.org", "zoe.two@example.org"} <= set(by_email)
    found = api.list("/v1/user", email=["zed.one@example.org", "zoe.two@example.org"])
    assert sorted(u["email"] for u in found) == ["zed.one@example.org", "zoe.two@example.org"]
    alice = api.list("/v1/user", given_name="Alice", family_name="Nguyen")
    assert [u["email"] for u in alice] == ["alice.nguyen@example.com"]


def test_ai_secret_type_filter(api: Api) -> None:
    a = api.post("/v1/ai_secret", {"name": "OPENAI_API_KEY", "type": "openai", "secret": "s1"})
    b = api.post("/v1/ai_secret", {"name": "ANTHROPIC_API_KEY", "type": "anthropic", "secret": "s2"})
    api.post("/v1/ai_secret", {"name": "OTHER", "type": "mistral"})
    assert ids(api.list("/v1/ai_secret", ai_secret_type="openai")) == [a["id"]]
    assert ids(api.list("/v1/ai_secret", ai_secret_type=["openai", "anthropic"])) == [b["id"], a["id"]]
    assert ids(api.list("/v1/ai_secret", ai_secret_name="ANTHROPIC_API_KEY")) == [b["id"]]


def test_experiment_limit_has_a_default_of_1000(api: Api, project: dict) -> None:
    # the only list with a default limit; checking the number itself would need 1001 experiments
    from braintrust_migrate.sandbox.objects.handlers import _default_limit

    assert _default_limit(TYPES["experiment"]) == 1000
    assert _default_limit(TYPES["dataset"]) is None
