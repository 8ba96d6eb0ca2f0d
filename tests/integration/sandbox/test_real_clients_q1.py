"""Other people's clients against the sandbox: /btql bodies, /ping, invoke/eval, system role names.

Judged by plain HTTP against the sandbox (and the official SDK's own connection for /ping).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from braintrust_migrate.sandbox.objects.admin import SandboxOrg, system_role_id
from braintrust_migrate.sandbox.server import SandboxServer
from tests.integration.sandbox.helpers import Api


@pytest.fixture
def logs(api: Api, project: dict) -> dict[str, Any]:
    """Three live rows in two traces of the project's logs."""
    rows = [
        {"id": "a", "span_id": "sa", "root_span_id": "T1"},
        {"id": "b", "span_id": "sb", "root_span_id": "T1", "span_parents": ["sa"]},
        {"id": "c", "span_id": "sc", "root_span_id": "T2"},
    ]
    api.post(f"/v1/project_logs/{project['id']}/insert", {"events": rows})
    return {"from": f"from: project_logs('{project['id']}') spans", "project": project}


def _btql(api: Api, body: dict[str, Any]) -> Any:
    return api.client.post("/btql", json=body)


# --- /btql body options -------------------------------------------------------------------------


def test_migration_tool_v041_body_reads_rows(api: Api, logs: dict[str, Any]) -> None:
    body = {
        "query": f"select: *\n{logs['from']}\nsort: _pagination_key asc\nlimit: 1000",
        "fmt": "json",
        "client_version": "0.4.1",
        "use_brainstore": True,
        "api_version": 1,
        "query_timeout_seconds": 30,
    }
    response = _btql(api, body)
    assert response.status_code == 200, response.text
    assert sorted(row["id"] for row in response.json()["data"]) == ["a", "b", "c"]


def test_documented_and_unknown_options_are_ignored(api: Api, logs: dict[str, Any]) -> None:
    body = {
        "query": f"select: id\n{logs['from']}",
        "brainstore_realtime": True,
        "tz_offset": 480,
        "relaxed_search_mode": True,
        "overflow_results": False,
        "use_columnstore": False,
        "query_source": "py_sdk_object_fetcher_dataset",
        "inference_depth": 2,
        "some_future_option": {"x": 1},
    }
    response = _btql(api, body)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 3


def test_jsonl_served_and_parquet_refused_by_name(api: Api, logs: dict[str, Any]) -> None:
    query = f"select: id\n{logs['from']}\nsort: _pagination_key asc"
    response = _btql(api, {"query": query, "fmt": "jsonl"})
    assert response.status_code == 200, response.text
    lines = [orjson.loads(line) for line in response.content.splitlines() if line.strip()]
    assert [row["id"] for row in lines] == ["a", "b", "c"]
    assert response.headers.get("x-bt-cursor")
    refused = _btql(api, {"query": query, "fmt": "parquet", "client_version": "0.4.1"})
    assert refused.status_code == 400
    assert "fmt" in refused.json()["error"] and "parquet" in refused.json()["error"]
    audit = _btql(api, {"query": query, "audit_log": True})
    assert audit.status_code == 400 and "audit_log" in audit.json()["error"]


def test_scope_to_root_span_id_reads_one_trace(api: Api, logs: dict[str, Any]) -> None:
    response = _btql(api, {"query": f"select: id\n{logs['from']}", "scope_to_root_span_id": "T1"})
    assert response.status_code == 200, response.text
    assert sorted(row["id"] for row in response.json()["data"]) == ["a", "b"]


# --- /ping ----------------------------------------------------------------------------------------


def test_ping_answers_the_key_owner(api: Api, sandbox_org: SandboxOrg) -> None:
    response = api.client.get("/ping")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == sandbox_org.user_id
    assert api.client.get("/ping", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_ping_through_the_official_sdk(sandbox_server: SandboxServer, sandbox_org: SandboxOrg) -> None:
    braintrust = pytest.importorskip("braintrust")
    from braintrust.api._transport import HTTPConnection

    conn = HTTPConnection(sandbox_server.url)
    conn.set_token(sandbox_org.api_key)
    assert conn.ping() is True
    state = braintrust.logger.BraintrustState()  # a private state: the global login stays untouched
    state.login(app_url=sandbox_server.url, api_key=sandbox_org.api_key, force_login=True)
    assert state.user_info()["id"] == sandbox_org.user_id


# --- invoke / eval ------------------------------------------------------------------------------


def test_invoke_and_eval_say_no_llm_runtime(api: Api, project: dict) -> None:
    function = api.post(
        "/v1/function",
        {
            "project_id": project["id"],
            "name": "f",
            "slug": "f",
            "function_data": {"type": "prompt"},
            "prompt_data": {"prompt": {"type": "completion", "content": "hi"}},
        },
    )
    calls = [
        ("/function/invoke", {"function_id": function["id"], "input": {}}),
        (f"/v1/function/{function['id']}/invoke", {"input": {}}),
        ("/v1/eval", {"project_id": project["id"], "data": {"dataset_id": str(uuid.uuid4())}}),
    ]
    for path, body in calls:
        response = api.client.post(path, json=body)
        assert response.status_code == 501, f"{path}: {response.status_code} {response.text}"
        error = response.json()["error"]
        assert "sandbox" in error and "LLM runtime" in error, error
    # an id the caller cannot see is a 404 as anywhere else, not a 501
    unknown = api.client.post(f"/v1/function/{uuid.uuid4()}/invoke", json={"input": {}})
    assert unknown.status_code == 404
    assert api.client.post("/v1/eval", json={}, headers={"Authorization": "Bearer nope"}).status_code == 401


# --- roles named like a system role --------------------------------------------------------------


def test_role_named_like_a_system_role_is_the_system_role(api: Api) -> None:
    owner_id = system_role_id("Owner")
    got = api.post("/v1/role", {"name": "Owner", "description": "mine"})
    assert got["id"] == owner_id and got["org_id"] is None and got["description"] != "mine"
    named = api.list("/v1/role", role_name="Owner")
    assert [r["id"] for r in named] == [owner_id]
    assert "system role" in api.fails(403, "PUT", "/v1/role", json={"name": "Owner"})
    custom = api.post("/v1/role", {"name": "reviewers"})
    assert "already exists" in api.fails(400, "PATCH", f"/v1/role/{custom['id']}", json={"name": "Viewer"})
    assert [r["id"] for r in api.list("/v1/role", role_name="Viewer")] == [system_role_id("Viewer")]
