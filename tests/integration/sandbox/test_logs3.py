"""The SDK's own endpoints over raw HTTP: ``/api/apikey/login``, ``/logs3``, ``/logs3/overflow``."""

from __future__ import annotations

import httpx
import orjson
import pytest

from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from tests.integration.sandbox.helpers import Api


@pytest.fixture
def objects(api: Api, project: dict) -> dict[str, dict]:
    return {
        "project": project,
        "experiment": api.post("/v1/experiment", {"project_id": project["id"], "name": "e"}),
        "dataset": api.post("/v1/dataset", {"project_id": project["id"], "name": "d"}),
    }


def logs3(api: Api, rows: list[dict] | dict, status: int = 200) -> httpx.Response:
    response = api.client.post("/logs3", content=orjson.dumps({"rows": rows, "api_version": 2}))
    assert response.status_code == status, response.text
    return response


def latest(api: Api, path: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for row in api.post(f"{path}/fetch", {})["events"]:
        if row["id"] not in out or row["_xact_id"] > out[row["id"]]["_xact_id"]:
            out[row["id"]] = row
    return out


def test_login_lists_the_orgs_of_the_key(sandbox_server: SandboxServer, sandbox_org: SandboxOrg) -> None:
    response = httpx.post(
        f"{sandbox_server.url}/api/apikey/login", headers={"Authorization": f"Bearer {sandbox_org.api_key}"}
    )
    assert response.status_code == 200
    [org] = response.json()["org_info"]
    assert org["name"] == sandbox_org.name and org["api_url"] == sandbox_server.url
    assert org["is_universal_api"] is False
    assert httpx.post(f"{sandbox_server.url}/api/apikey/login").status_code == 401


def test_rows_route_to_their_containers_in_one_transaction(api: Api, objects: dict) -> None:
    p, e, d = objects["project"], objects["experiment"], objects["dataset"]
    response = logs3(
        api,
        [
            {
                "id": "l1",
                "project_id": p["id"],
                "log_id": "g",
                "input": 1,
                "span_id": "s",
                "root_span_id": "s",
            },
            {
                "id": "e1",
                "experiment_id": e["id"],
                "output": 2,
                "scores": {"acc": 1},
                "_async_scoring_control": {},
            },
            {"id": "d1", "dataset_id": d["id"], "expected": 3, "created": "2026-03-01T10:00:00.123456+00:00"},
            {"id": "l1", "project_id": p["id"], "log_id": "g", "_is_merge": True, "output": "o"},
        ],
    )
    assert response.json() == {"row_ids": ["l1", "e1", "d1", "l1"]}
    l1 = latest(api, f"/v1/project_logs/{p['id']}")["l1"]
    e1 = latest(api, f"/v1/experiment/{e['id']}")["e1"]
    d1 = latest(api, f"/v1/dataset/{d['id']}")["d1"]
    assert (l1["input"], l1["output"]) == (1, "o")
    assert e1["scores"] == {"acc": 1} and d1["expected"] == 3
    assert d1["created"] == "2026-03-01T10:00:00.123456Z"
    assert l1["_xact_id"] == e1["_xact_id"] == d1["_xact_id"]


def test_rows_are_validated_like_inserts(api: Api, objects: dict) -> None:
    p, d = objects["project"], objects["dataset"]
    cases = [
        ({"dataset_id": d["id"], "output": 1}, "rows[0].output"),
        ({"project_id": p["id"], "log_id": "g", "scores": {"a": 2}}, "rows[0].scores.a"),
        ({"input": 1}, "must name its container"),
        ({"project_id": p["id"], "input": 1}, "must name its container"),
        ({"prompt_session_id": "x", "log_id": "x"}, "prompt_session_id"),
        ({"dataset_id": d["id"], "comment": {"text": "x"}}, "origin.id"),
    ]
    for row, message in cases:
        assert message in logs3(api, [row], 400).json()["error"], row
    logs3(api, [{"dataset_id": "00000000-0000-4000-8000-000000000000"}], 404)
    assert api.client.post("/logs3", content=b'{"rows": 5}').status_code == 400
    assert latest(api, f"/v1/dataset/{d['id']}") == {}


def test_sdk_feedback_and_comment_rows(api: Api, objects: dict) -> None:
    e = objects["experiment"]
    logs3(api, [{"id": "r", "experiment_id": e["id"], "scores": {"acc": 0.5}}])
    logs3(
        api,
        [
            {
                "id": "r",
                "experiment_id": e["id"],
                "scores": {"acc": 1},
                "_is_merge": True,
                "_audit_source": "app",
                "_audit_metadata": {"reviewer": "x"},
            },
            {
                "id": "c1",
                "created": "2026-03-01T10:00:00+00:00",
                "origin": {"id": "r"},
                "comment": {"text": "nice"},
                "experiment_id": e["id"],
                "_audit_source": "external",
                "_audit_metadata": None,
            },
        ],
    )
    row = latest(api, f"/v1/experiment/{e['id']}")["r"]
    assert row["scores"] == {"acc": 1}
    [comment] = row["comments"]
    assert comment["id"] == "c1" and comment["comment"] == {"text": "nice"}
    assert comment["created"] == "2026-03-01T10:00:00.000Z"
    first, second = row["audit_data"]
    assert first["source"] == "app" and first["metadata"] == {"reviewer": "x"}
    assert first["audit_data"]["changes"] == [{"path": ["scores", "acc"], "from": 0.5, "to": 1}]
    assert second["audit_data"]["comment"] == {"id": "c1", "text": "nice"}
    assert "c1" not in latest(api, f"/v1/experiment/{e['id']}")  # a comment is not a row


def test_overflow_upload_then_reference(api: Api, objects: dict, sandbox_server: SandboxServer) -> None:
    d = objects["dataset"]
    payload = orjson.dumps(
        {"rows": [{"id": "big", "dataset_id": d["id"], "input": "x" * 1000}], "api_version": 2}
    )
    grant = api.client.post(
        "/logs3/overflow", json={"content_type": "application/json", "size_bytes": len(payload), "rows": []}
    )
    assert grant.status_code == 200
    upload = grant.json()
    assert upload["method"] == "PUT" and upload["signedUrl"].startswith(sandbox_server.url)
    logs3(api, {"type": "logs3_overflow", "key": upload["key"]}, 400)  # not uploaded yet
    put = httpx.put(upload["signedUrl"], content=payload, headers=upload["headers"])  # no API key
    assert put.status_code == 200
    assert logs3(
        api, {"type": "logs3_overflow", "key": upload["key"], "size_bytes": len(payload)}
    ).json() == {"row_ids": ["big"]}
    assert latest(api, f"/v1/dataset/{d['id']}")["big"]["input"] == "x" * 1000
    logs3(api, {"type": "logs3_overflow", "key": upload["key"]}, 400)  # used up
    assert (
        httpx.put(f"{sandbox_server.url}/_sandbox/logs3-overflow/unknown", content=b"{}").status_code == 404
    )


def test_legacy_registration_endpoints(api: Api, sandbox_org: SandboxOrg) -> None:
    """The app-URL registration calls of older SDKs (shapes read in braintrust 0.3.15)."""

    def post(path: str, body: dict) -> dict:
        response = api.client.post(path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    project = post("/api/project/register", {"project_name": "legacy", "org_id": sandbox_org.id})["project"]
    assert project["name"] == "legacy" and project["org_id"] == sandbox_org.id
    assert post("/api/project/register", {"project_name": "legacy"})["project"] == project  # existing
    assert api.client.get("/api/project", params={"id": project["id"]}).json() == project
    assert post("/api/project/register", {"org_id": sandbox_org.id})["project"]["name"] == "Global"

    first = post(
        "/api/experiment/register",
        {"project_name": "legacy", "org_id": sandbox_org.id, "experiment_name": "run", "metadata": {"a": 1}},
    )
    assert first["project"] == project
    experiment = first["experiment"]
    assert (experiment["name"], experiment["metadata"]) == ("run", {"a": 1})
    again = post("/api/experiment/register", {"project_id": project["id"], "experiment_name": "run"})
    assert again["experiment"]["name"] != "run"  # not an update: a new experiment with a fresh name
    updated = post(
        "/api/experiment/register", {"project_id": project["id"], "experiment_name": "run", "update": True}
    )
    assert updated["experiment"]["id"] == experiment["id"]
    based = post(
        "/api/experiment/register",
        {"project_id": project["id"], "experiment_name": "next", "base_experiment": "run"},
    )
    assert based["experiment"]["base_exp_id"] == experiment["id"]
    missing = api.client.post(
        "/api/experiment/register", json={"project_id": project["id"], "base_experiment": "nope"}
    )
    assert missing.status_code == 400 and "base experiment" in missing.json()["error"]

    dataset = post("/api/dataset/register", {"project_id": project["id"], "dataset_name": "golden"})
    assert dataset["dataset"]["name"] == "golden" and dataset["dataset"]["project_id"] == project["id"]
    forbidden = api.client.post(
        "/api/project/register", json={"project_name": "x", "org_id": "00000000-0000-4000-8000-000000000000"}
    )
    assert forbidden.status_code == 403
