"""The sandbox's reference table (``sandbox/references.py``), one test per row, over plain HTTP.

For every row: a body carrying the id of an object of the row's target type that lives in
ANOTHER org is refused with the status and the words an id that exists nowhere gets
(``{path}: no {types} with id {id} in this organization``; 403 "not accessible" for the
anchor fields that decide the org). Strict rows refuse the unknown id too; the others
accept it (a dangling reference, as the hosted API allows).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from braintrust_migrate.sandbox.core.references import REFERENCES, Ref
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.sandbox.testing import unique_org_name
from tests.integration.sandbox.helpers import Api

# --- the contract: every request-body id field of braintrust-api.md §2 ------------------------

# (owner, field path) exactly as §2 lists them, in table notation ([*] array item, * map value).
SPEC_FIELDS: tuple[tuple[str, str], ...] = (
    ("project", "user_id"),
    ("project", "settings.baseline_experiment_id"),
    ("project", "settings.default_preprocessor.id"),
    ("experiment", "project_id"),
    ("experiment", "base_exp_id"),
    ("experiment", "dataset_id"),
    ("experiment", "parameters_id"),
    ("dataset", "project_id"),
    *(
        (owner, path)
        for owner in ("prompt", "function")
        for path in (
            "project_id",
            "prompt_data.tool_functions[*].id",
            "prompt_data.mcp.*.id",
            "prompt_data.origin.prompt_id",
            "prompt_data.origin.project_id",
        )
    ),
    ("function", "origin.object_id"),
    ("function", "function_data.nodes.*.function.function_id"),
    ("function", "function_data.nodes.*.function.prompt_session_id"),
    ("function", "function_data.nodes.*.function.prompt_session_function_id"),
    ("function", "function_data.preprocessor.id"),
    ("function", "function_data.topic_maps.*[*].topic_map_id"),
    ("role", "member_roles[*]"),
    ("group", "member_users[*]"),
    ("group", "member_groups[*]"),
    ("acl", "object_id"),
    ("acl", "user_id"),
    ("acl", "group_id"),
    ("acl", "role_id"),
    ("project_automation", "project_id"),
    ("project_automation", "config.facet_functions[*].id"),
    ("project_automation", "config.topic_map_functions[*].function.id"),
    ("project_automation", "config.data_scope.experiment_id"),
    ("project_score", "project_id"),
    ("project_score", "config.online.scorers[*].id"),
    ("project_tag", "project_id"),
    ("span_iframe", "project_id"),
    ("view", "object_id"),
    ("view", "user_id"),
    ("service_token", "service_account_id"),
    ("env_var", "object_id"),
    ("mcp_server", "project_id"),
    ("dataset_snapshot", "dataset_id"),
)
# §2 rows that are no request-body object id, and why (so the list above is the whole of §2).
NOT_BODY_REFERENCES: dict[str, str] = {
    "org_id, _object_org_id, user_id (creator) of every type but project/view": "server-set",
    "*.version, dataset_version, parameters_version, prompt_version, xact_id": "transaction ids",
    "spanFieldOrder, bundle_id, bundle_key, report_key, workspace_id, credentials, LLM ids": "external",
    "internal_metadata.dataset_filter, view_data, options, facets": "opaque payloads",
    "environment_filter, nodes.*.function project_name+slug / global_function": "names, not ids",
    "events origin.*, classifications, span ids": "event rows, checked by the events API",
    "PatchOrganizationMembers ids / group_ids": "special endpoint with its own check",
}
# PATCH delta fields the table adds on top of §2 (they carry the same ids as the create lists).
PATCH_DELTAS = {
    ("role", "add_member_roles[*]"),
    ("group", "add_member_users[*]"),
    ("group", "add_member_groups[*]"),
}


def test_every_spec_field_is_in_the_table() -> None:
    table = {(r.owner, r.path) for r in REFERENCES}
    assert sorted(set(SPEC_FIELDS) - table) == []
    assert sorted(table - set(SPEC_FIELDS) - PATCH_DELTAS) == []


# --- one test per row ---------------------------------------------------------------------------

FN = {"function_data": {"type": "prompt"}, "prompt_data": {}}
TOPIC_MAP = {"type": "topic_map", "source_facet": "intent", "embedding_model": "text-embedding-3-small"}


@dataclass
class Env:
    """My org (``mine``) and the other org (``theirs``), with objects made on demand."""

    mine: Api
    theirs: Api
    theirs_org: str
    theirs_user: str
    cache: dict[tuple[str, str], str] = field(default_factory=dict)

    def obj(self, who: str, kind: str) -> str:
        key = (who, kind)
        if key not in self.cache:
            self.cache[key] = self._make(self.mine if who == "mine" else self.theirs, who, kind)
        return self.cache[key]

    def _make(self, api: Api, who: str, kind: str) -> str:
        if kind == "project":
            return api.post("/v1/project", {"name": f"{who}-p"})["id"]
        if kind in ("role", "group"):
            return api.post(f"/v1/{kind}", {"name": f"{who}-{kind}"})["id"]
        p = self.obj(who, "project")
        bodies: dict[str, dict[str, Any]] = {
            "experiment": {"project_id": p, "name": "e"},
            "dataset": {"project_id": p, "name": "d"},
            "prompt": {"project_id": p, "name": "pr", "slug": "pr", "prompt_data": {}},
            "function": {"project_id": p, "name": "f", "slug": "f", **FN},
            "mcp_server": {"project_id": p, "name": "m", "url": "https://mcp.example.com"},
        }
        return api.post(f"/v1/{kind}", bodies[kind])["id"]

    def foreign(self, targets: tuple[str, ...]) -> str:
        """An id of the row's target type in the other org."""
        if targets == ("user",):
            return self.theirs_user
        if "organization" in targets:
            return self.theirs_org
        # prompt_session objects cannot exist (no endpoints): any other-org object stands in.
        return self.obj("theirs", "function" if targets in ((), ("prompt_session",)) else targets[0])


Call = tuple[str, str, dict[str, Any], str]  # method, url, body, concrete field path
Builder = Callable[[Env, str, str], Call]  # (env, id, when-value) -> call


def _post(url: str, path: str, body: Callable[[Env, str, str], dict[str, Any]]) -> Builder:
    return lambda env, i, w: ("POST", url, body(env, i, w), path)


def _patch(kind: str, path: str, body: Callable[[str], dict[str, Any]]) -> Builder:
    return lambda env, i, w: ("PATCH", f"/v1/{kind}/{env.obj('mine', kind)}", body(i), path)


def _p(env: Env) -> str:
    return env.obj("mine", "project")


def _prompt_data(url: str, path: str, data: Callable[[str], dict[str, Any]]) -> Builder:
    extra = FN["function_data"] if url == "/v1/function" else None
    return _post(
        url,
        path,
        lambda env, i, w: {
            "project_id": _p(env),
            "name": "x",
            "slug": "x",
            "prompt_data": data(i),
            **({"function_data": extra} if extra else {}),
        },
    )


def _function(path: str, function_data: Callable[[str], dict[str, Any]]) -> Builder:
    return _post(
        "/v1/function",
        path,
        lambda env, i, w: {
            "project_id": _p(env),
            "name": "f2",
            "slug": "f2",
            "function_data": function_data(i),
        },
    )


def _anchored(kind: str, body: Callable[[str], dict[str, Any]], field_name: str = "project_id") -> Builder:
    return _post(f"/v1/{kind}", field_name, lambda env, i, w: body(i))


def _object_id(kind: str, body: Callable[[Env], dict[str, Any]]) -> Builder:
    return _post(
        f"/v1/{kind}", "object_id", lambda env, i, w: {"object_type": w, "object_id": i, **body(env)}
    )


def _topic(env: Env, facet: dict[str, Any], topic: dict[str, Any], scope: Any = None) -> dict[str, Any]:
    config = {"event_type": "topic", "sampling_rate": 1, "facet_functions": [facet]}
    config["topic_map_functions"] = [{"function": topic}]
    if scope:
        config["data_scope"] = scope
    return {"project_id": _p(env), "name": "a", "config": config}


GLOBAL = {"type": "global", "name": "Sentiment", "function_type": "facet"}


def _fn(i: str) -> dict[str, Any]:
    return {"type": "function", "id": i}


def _node(fn: dict[str, Any]) -> dict[str, Any]:
    return {"type": "graph", "edges": {}, "nodes": {"n": {"type": "function", "function": fn}}}


_PROMPT_DATA: dict[str, Callable[[str], dict[str, Any]]] = {
    "prompt_data.tool_functions[*].id": lambda i: {"tool_functions": [_fn(i)]},
    "prompt_data.mcp.*.id": lambda i: {"mcp": {"m": {"type": "id", "id": i}}},
    "prompt_data.origin.prompt_id": lambda i: {"origin": {"prompt_id": i}},
    "prompt_data.origin.project_id": lambda i: {"origin": {"project_id": i}},
}
_CONCRETE = {
    "prompt_data.tool_functions[*].id": "prompt_data.tool_functions[0].id",
    "prompt_data.mcp.*.id": "prompt_data.mcp.m.id",
}
_VIEW = {"view_type": "logs", "name": "v"}

BUILDERS: dict[tuple[str, str], Builder] = {
    **{
        (owner, path): _prompt_data(f"/v1/{owner}", _CONCRETE.get(path, path), data)
        for owner in ("prompt", "function")
        for path, data in _PROMPT_DATA.items()
    },
    ("experiment", "project_id"): _anchored("experiment", lambda i: {"project_id": i, "name": "e"}),
    ("dataset", "project_id"): _anchored("dataset", lambda i: {"project_id": i, "name": "d"}),
    ("prompt", "project_id"): _anchored("prompt", lambda i: {"project_id": i, "name": "x", "slug": "x"}),
    ("function", "project_id"): _anchored("function", lambda i: {"project_id": i, "name": "x", "slug": "x", **FN}),
    ("project_automation", "project_id"): _anchored(
        "project_automation",
        lambda i: {
            "project_id": i,
            "name": "a",
            "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 1},
        },
    ),
    ("project_score", "project_id"): _anchored(
        "project_score", lambda i: {"project_id": i, "name": "s", "score_type": "slider"}
    ),
    ("project_tag", "project_id"): _anchored("project_tag", lambda i: {"project_id": i, "name": "t"}),
    ("span_iframe", "project_id"): _anchored(
        "span_iframe", lambda i: {"project_id": i, "name": "s", "url": "https://example.com"}
    ),
    ("mcp_server", "project_id"): _anchored(
        "mcp_server", lambda i: {"project_id": i, "name": "m", "url": "https://example.com"}
    ),
    ("dataset_snapshot", "dataset_id"): _anchored(
        "dataset_snapshot", lambda i: {"dataset_id": i, "name": "s", "xact_id": "1"}, "dataset_id"
    ),
    ("acl", "object_id"): _object_id(
        "acl", lambda env: {"group_id": env.obj("mine", "group"), "permission": "read"}
    ),
    ("view", "object_id"): _object_id("view", lambda env: _VIEW),
    ("env_var", "object_id"): _object_id("env_var", lambda env: {"name": "E"}),
    ("project", "user_id"): _patch("project", "user_id", lambda i: {"user_id": i}),
    ("project", "settings.baseline_experiment_id"): _patch(
        "project", "settings.baseline_experiment_id", lambda i: {"settings": {"baseline_experiment_id": i}}
    ),
    ("project", "settings.default_preprocessor.id"): _patch(
        "project", "settings.default_preprocessor.id", lambda i: {"settings": {"default_preprocessor": _fn(i)}}
    ),
    **{
        ("experiment", f): _post("/v1/experiment", f, lambda env, i, w, f=f: {"project_id": _p(env), "name": "e2", f: i})
        for f in ("base_exp_id", "dataset_id", "parameters_id")
    },
    ("function", "origin.object_id"): _post(
        "/v1/function",
        "origin.object_id",
        lambda env, i, w: {
            "project_id": _p(env),
            "name": "o",
            "slug": "o",
            **FN,
            "origin": {"object_type": w, "object_id": i},
        },
    ),
    ("function", "function_data.preprocessor.id"): _function(
        "function_data.preprocessor.id", lambda i: {"type": "facet", "prompt": "x", "preprocessor": _fn(i)}
    ),
    ("function", "function_data.topic_maps.*[*].topic_map_id"): _function(
        "function_data.topic_maps.intent[0].topic_map_id",
        lambda i: {
            "type": "batched_facet",
            "facets": [{"name": "intent", "prompt": "Intent?"}],
            "topic_maps": {
                "intent": [{"function_name": "t", "topic_map_id": i, "topic_map_data": TOPIC_MAP}]
            },
        },
    ),
    ("function", "function_data.nodes.*.function.function_id"): _function(
        "function_data.nodes.n.function.function_id", lambda i: _node({"function_id": i})
    ),
    ("function", "function_data.nodes.*.function.prompt_session_id"): _function(
        "function_data.nodes.n.function.prompt_session_id",
        lambda i: _node({"prompt_session_id": i, "prompt_session_function_id": str(uuid.uuid4())}),
    ),
    ("function", "function_data.nodes.*.function.prompt_session_function_id"): _function(
        "function_data.nodes.n.function.prompt_session_function_id",
        lambda i: _node({"prompt_session_id": str(uuid.uuid4()), "prompt_session_function_id": i}),
    ),
    ("role", "member_roles[*]"): _post("/v1/role", "member_roles[0]", lambda env, i, w: {"name": "r2", "member_roles": [i]}),
    ("role", "add_member_roles[*]"): _patch("role", "add_member_roles[0]", lambda i: {"add_member_roles": [i]}),
    **{
        ("group", f"{f}[*]"): _post("/v1/group", f"{f}[0]", lambda env, i, w, f=f: {"name": "g2", f: [i]})
        for f in ("member_users", "member_groups")
    },
    **{
        ("group", f"{f}[*]"): _patch("group", f"{f}[0]", lambda i, f=f: {f: [i]})
        for f in ("add_member_users", "add_member_groups")
    },
    ("acl", "user_id"): _post(
        "/v1/acl",
        "user_id",
        lambda env, i, w: {"object_type": "project", "object_id": _p(env), "user_id": i, "permission": "read"},
    ),
    ("acl", "group_id"): _post(
        "/v1/acl",
        "group_id",
        lambda env, i, w: {"object_type": "project", "object_id": _p(env), "group_id": i, "permission": "read"},
    ),
    ("acl", "role_id"): _post(
        "/v1/acl",
        "role_id",
        lambda env, i, w: {
            "object_type": "project",
            "object_id": _p(env),
            "group_id": env.obj("mine", "group"),
            "role_id": i,
        },
    ),
    ("project_automation", "config.facet_functions[*].id"): _post(
        "/v1/project_automation",
        "config.facet_functions[0].id",
        lambda env, i, w: _topic(env, _fn(i), GLOBAL),
    ),
    ("project_automation", "config.topic_map_functions[*].function.id"): _post(
        "/v1/project_automation",
        "config.topic_map_functions[0].function.id",
        lambda env, i, w: _topic(env, GLOBAL, _fn(i)),
    ),
    ("project_automation", "config.data_scope.experiment_id"): _post(
        "/v1/project_automation",
        "config.data_scope.experiment_id",
        lambda env, i, w: _topic(env, GLOBAL, GLOBAL, {"type": "experiment", "experiment_id": i}),
    ),
    ("project_score", "config.online.scorers[*].id"): _post(
        "/v1/project_score",
        "config.online.scorers[0].id",
        lambda env, i, w: {
            "project_id": _p(env),
            "name": "s2",
            "score_type": "online",
            "config": {"online": {"sampling_rate": 1, "scorers": [_fn(i)]}},
        },
    ),
    ("view", "user_id"): _post(
        "/v1/view",
        "user_id",
        lambda env, i, w: {"object_type": "project", "object_id": _p(env), **_VIEW, "user_id": i},
    ),
    ("service_token", "service_account_id"): _post(
        "/v1/service_token", "service_account_id", lambda env, i, w: {"name": "t", "service_account_id": i}
    ),
}  # fmt: skip


def _row_id(ref: Ref) -> str:
    return f"{ref.owner}.{ref.path}" + (f"[{ref.when[0]}={ref.when[1]}]" if ref.when else "")


@pytest.fixture
def env(make_api: Callable[[str | None], Api], sandbox_org: SandboxOrg, sandbox_server: SandboxServer) -> Env:
    email = f"{uuid.uuid4().hex}@example.com"  # a user of the other org only
    other = sandbox_server.create_org(unique_org_name("other"), users=[email])
    theirs = make_api(other.api_key)
    theirs_user = next(u["id"] for u in theirs.list("/v1/user") if u["email"] == email)
    theirs_org = theirs.list("/v1/organization")[0]["id"]
    return Env(make_api(sandbox_org.api_key), theirs, theirs_org, theirs_user)


def _send(env: Env, ref: Ref, id_: str) -> tuple[int, str, str]:
    method, url, body, path = BUILDERS[(ref.owner, ref.path)](env, id_, ref.when[1] if ref.when else "")
    response = env.mine.request(method, url, json=body)
    error = response.json().get("error", "") if response.status_code != 200 else ""
    return response.status_code, error, path


@pytest.mark.parametrize("ref", REFERENCES, ids=[_row_id(r) for r in REFERENCES])
def test_foreign_id_is_refused_like_an_unknown_one(env: Env, ref: Ref) -> None:
    foreign = env.foreign(ref.targets)
    status, message, path = _send(env, ref, foreign)
    unknown = str(uuid.uuid4())
    u_status, u_message, _ = _send(env, ref, unknown)
    if ref.anchor:
        assert status == u_status == 403, (message, u_message)
        assert message.replace(foreign, "ID") == u_message.replace(unknown, "ID")
        assert message.startswith(f"{path}: ") and foreign in message
        return
    assert (status, message) == (
        400,
        f"{path}: no {'/'.join(ref.targets)} with id {foreign} in this organization",
    )
    if ref.strict:
        assert (u_status, u_message) == (400, message.replace(foreign, unknown))
    else:  # a dangling reference is kept, as on the hosted API
        assert u_status == 200, u_message
