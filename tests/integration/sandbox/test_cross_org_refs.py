"""One cross-org rule for id-bearing fields (issue #14): an id of another org's object is
refused with 400 and the words an unknown id gets ("no ... with id ... in this
organization"), whatever field carries it, graph nodes included."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.sandbox.testing import OrgPair
from tests.integration.sandbox.helpers import Api

FN = {"function_data": {"type": "prompt"}, "prompt_data": {}}
# (case, endpoint, target made in the other org, body with the id at "{id}", field path, target types)
CASES: list[tuple[str, str, str, Callable[[str, str], dict[str, Any]], str, str]] = [
    ("role.member_roles", "/v1/role", "role", lambda p, i: {"name": "r", "member_roles": [i]},
     "member_roles[0]", "role"),
    ("group.member_groups", "/v1/group", "group", lambda p, i: {"name": "g", "member_groups": [i]},
     "member_groups[0]", "group"),
    ("prompt.tool_functions", "/v1/prompt", "function",
     lambda p, i: {"project_id": p, "name": "p", "slug": "p",
                   "prompt_data": {"tool_functions": [{"type": "function", "id": i}]}},
     "prompt_data.tool_functions[0].id", "function/prompt"),
    ("prompt.mcp", "/v1/prompt", "mcp_server",
     lambda p, i: {"project_id": p, "name": "p", "slug": "p",
                   "prompt_data": {"mcp": {"m": {"type": "id", "id": i}}}},
     "prompt_data.mcp.m.id", "mcp_server"),
    ("function.preprocessor", "/v1/function", "function",
     lambda p, i: {"project_id": p, "name": "f", "slug": "f",
                   "function_data": {"type": "facet", "prompt": "x",
                                     "preprocessor": {"type": "function", "id": i}}},
     "function_data.preprocessor.id", "function/prompt"),
    ("function.graph_node", "/v1/function", "function",
     lambda p, i: {"project_id": p, "name": "f", "slug": "f",
                   "function_data": {"type": "graph", "edges": {},
                                     "nodes": {"n": {"type": "function", "function": {"function_id": i}}}}},
     "function_data.nodes.n.function.function_id", "function/prompt"),
]  # fmt: skip


def make_target(api: Api, kind: str) -> str:
    if kind in ("role", "group"):
        return api.post(f"/v1/{kind}", {"name": f"foreign-{kind}"})["id"]
    project = api.post("/v1/project", {"name": "foreign"})
    if kind == "mcp_server":
        body = {"project_id": project["id"], "name": "m", "url": "https://mcp.example.com"}
        return api.post("/v1/mcp_server", body)["id"]
    return api.post("/v1/function", {"project_id": project["id"], "name": "t", "slug": "t", **FN})["id"]


@pytest.mark.parametrize(("endpoint", "kind", "body", "path", "targets"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_foreign_id_is_refused_like_an_unknown_one(
    make_api: Callable[[str | None], Api],
    sandbox_orgs: OrgPair,
    endpoint: str,
    kind: str,
    body: Callable[[str, str], dict[str, Any]],
    path: str,
    targets: str,
) -> None:
    mine, theirs = make_api(sandbox_orgs.dest.api_key), make_api(sandbox_orgs.source.api_key)
    foreign = make_target(theirs, kind)
    project = mine.post("/v1/project", {"name": "mine"})["id"]
    message = mine.fails(400, "POST", endpoint, json=body(project, foreign))
    assert f"{path}: no {targets} with id {foreign} in this organization" in message


def test_view_user_id_of_another_org_is_refused(
    make_api: Callable[[str | None], Api], sandbox_orgs: OrgPair, sandbox_server: SandboxServer
) -> None:
    mine = make_api(sandbox_orgs.dest.api_key)
    other = sandbox_server.create_org(
        f"other-{uuid.uuid4().hex[:8]}", users=[f"{uuid.uuid4().hex}@example.com"]
    )
    members = {u["id"] for u in mine.list("/v1/user")}
    stranger = next(u["id"] for u in make_api(other.api_key).list("/v1/user") if u["id"] not in members)
    project = mine.post("/v1/project", {"name": "mine"})["id"]
    body = {
        "object_type": "project",
        "object_id": project,
        "view_type": "logs",
        "name": "v",
        "user_id": stranger,
    }
    assert "user_id" in mine.fails(400, "POST", "/v1/view", json=body)
