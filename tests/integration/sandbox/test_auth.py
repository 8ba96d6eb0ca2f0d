"""Authentication, request validation and the admin API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.sandbox.helpers import Api


def test_index_needs_no_auth(sandbox_server: Any) -> None:
    response = httpx.get(sandbox_server.url + "/v1")
    assert response.status_code == 200
    assert response.text == "Hello, World!" and response.headers["content-type"].startswith("text/plain")


def test_missing_or_bad_keys_get_401(make_api: Any) -> None:
    for key in (None, "sk-not-a-real-key"):
        assert make_api(key).fails(401, "GET", "/v1/project")
    raw = httpx.get(
        make_api(None).client.base_url.join("/v1/project"), headers={"Authorization": "Basic abc"}
    )
    assert raw.status_code == 401 and "Bearer" in raw.json()["error"]


def test_cors_preflight(sandbox_server: Any) -> None:
    response = httpx.options(sandbox_server.url + "/v1/project")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_unknown_paths_and_methods(api: Api) -> None:
    api.fails(404, "GET", "/v1/nothing-here")
    api.fails(405, "POST", "/v1/user")
    api.fails(405, "PUT", "/v1/project")  # the spec has no PUT for projects
    api.fails(405, "PATCH", "/v1/acl/00000000-0000-4000-8000-000000000000")


def test_bad_input_is_400_with_the_field(api: Api, project: dict) -> None:
    assert "Malformed JSON" in api.fails(400, "POST", "/v1/project", content=b'{"name": ')
    assert "object" in api.fails(400, "POST", "/v1/project", content=b"[1, 2]")
    assert "name" in api.fails(400, "POST", "/v1/project", json={})
    assert "name" in api.fails(400, "POST", "/v1/project", json={"name": 5})
    assert "name" in api.fails(400, "POST", "/v1/project", json={"name": ""})
    error = api.fails(400, "POST", "/v1/experiment", json={"project_id": "nope"})
    assert "project_id" in error and "uuid" in error
    error = api.fails(
        400,
        "POST",
        "/v1/prompt",
        json={
            "project_id": project["id"],
            "name": "p",
            "slug": "p",
            "prompt_data": {"prompt": {"type": "chat", "messages": [{"role": "user", "content": 5}]}},
        },
    )
    assert "prompt_data.prompt" in error and "messages[0].content" in error
    assert "project_id" in api.fails(400, "GET", "/v1/project/not-a-uuid")
    assert "ids" in api.fails(400, "GET", "/v1/project", params={"ids": ["a", "b"]})
    api.fails(404, "GET", "/v1/project/00000000-0000-4000-8000-000000000000")


def test_admin_api(sandbox_server: Any) -> None:
    url = sandbox_server.url
    assert httpx.get(url + "/_sandbox/health").json() == {"status": "ok"}
    assert httpx.post(url + "/_sandbox/orgs", json={"name": "x"}).status_code == 401
    headers = {"X-Sandbox-Admin-Key": sandbox_server.admin_key}
    made = httpx.post(
        url + "/_sandbox/orgs", json={"name": "admin-made", "users": ["a@x.io"]}, headers=headers
    )
    assert made.status_code == 200, made.text
    org = made.json()
    assert set(org) >= {"name", "id", "api_key"}
    api = Api(url, org["api_key"])
    assert [u["email"] for u in api.list("/v1/user")] == ["a@x.io"]
    dup = httpx.post(url + "/_sandbox/orgs", json={"name": "admin-made"}, headers=headers)
    assert dup.status_code == 400 and "already exists" in dup.json()["error"]
    second = httpx.post(url + "/_sandbox/orgs", json={"name": "admin-made-2"}, headers=headers).json()
    granted = httpx.post(
        url + "/_sandbox/grants",
        json={"api_key": org["api_key"], "org_name": second["name"]},
        headers=headers,
    )
    assert granted.status_code == 200
    assert {o["name"] for o in api.list("/v1/organization")} == {"admin-made", "admin-made-2"}
    listed = httpx.get(url + "/_sandbox/orgs", headers=headers).json()
    assert {"admin-made", "admin-made-2"} <= {o["name"] for o in listed}
    assert httpx.post(url + "/_sandbox/orgs", content=b"{", headers=headers).status_code == 400
    api.close()


def test_write_count_per_key(sandbox_server: Any, sandbox_org: Any, make_api: Any) -> None:
    api = make_api(sandbox_org.api_key)
    assert sandbox_server.write_count(sandbox_org.api_key) == 0
    api.list("/v1/project")
    api.post("/v1/project", {"name": "w"})
    api.fails(400, "POST", "/v1/project", json={})
    assert sandbox_server.write_count(sandbox_org.api_key) == 2  # attempts, whatever their outcome
    headers = {"X-Sandbox-Admin-Key": sandbox_server.admin_key}
    out = httpx.post(
        sandbox_server.url + "/_sandbox/writes", json={"api_key": sandbox_org.api_key}, headers=headers
    )
    assert out.json()["writes"] == 2
