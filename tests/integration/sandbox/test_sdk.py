"""The official Braintrust Python SDK logs into the sandbox; BTQL reads it back.

The SDK is pointed at the sandbox only through its documented arguments (``api_key``,
``app_url``); login hands it the sandbox as ``api_url``. Any name resolution other
than loopback fails the test, so nothing leaves the machine.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.sandbox.testing import unique_org_name
from tests.integration.sandbox.helpers import Api

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def braintrust() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as mp:
        # Fail fast and loudly: a rejected /logs3 raises from flush() instead of retrying.
        mp.setenv("BRAINTRUST_SYNC_FLUSH", "true")
        mp.setenv("BRAINTRUST_NUM_RETRIES", "0")
        mp.setenv("BRAINTRUST_DISABLE_ATEXIT_FLUSH", "true")
        for name in ("BRAINTRUST_API_URL", "BRAINTRUST_APP_URL", "BRAINTRUST_API_KEY", "BRAINTRUST_ORG_NAME"):
            mp.delenv(name, raising=False)
        yield pytest.importorskip("braintrust")


@pytest.fixture(scope="module")
def sdk_org(sandbox_server: SandboxServer) -> SandboxOrg:
    # One org for the module: the SDK's login and background logger are process-global,
    # and switching API keys between tests would leave the logger on the first one.
    return sandbox_server.create_org(unique_org_name("sdk"))


@pytest.fixture(scope="module")
def sdk(braintrust: Any, sandbox_server: SandboxServer, sdk_org: SandboxOrg) -> Any:
    """The SDK, logged in as the module's org."""
    braintrust.login(app_url=sandbox_server.url, api_key=sdk_org.api_key, force_login=True)
    return braintrust


@pytest.fixture
def api(sandbox_server: SandboxServer, sdk_org: SandboxOrg) -> Iterator[Api]:
    with Api(sandbox_server.url, sdk_org.api_key) as client:
        yield client


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            raise OSError(f"test_sdk: network access to {name!r} is not allowed")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


def btql(api: Api, source: str, extra: str = "") -> list[dict[str, Any]]:
    response = api.client.post(
        "/btql", json={"query": f"select: *\nfrom: {source} spans\nsort: _pagination_key asc\n{extra}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def latest_by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def test_logger_traces_and_feedback(
    sdk: Any, sandbox_server: SandboxServer, sdk_org: SandboxOrg, api: Api
) -> None:
    logger = sdk.init_logger(project="sdk-logs", api_key=sdk_org.api_key, app_url=sandbox_server.url)
    with logger.start_span(name="handle", input={"question": "2+2?"}) as root:
        root.log(
            output={"answer": 4}, scores={"correct": 0.5}, metadata={"model": "m1", "tier": 2}, tags=["t"]
        )
        with root.start_span(name="llm", type="llm") as child:
            child.log(input=[{"role": "user", "content": "2+2?"}], output="4", metrics={"tokens": 7})
    logger.log_feedback(id=root.id, scores={"correct": 1}, comment="checked by hand", metadata={"by": "qa"})
    logger.flush()

    [project] = [p for p in api.list("/v1/project") if p["name"] == "sdk-logs"]
    rows = latest_by_id(btql(api, f"project_logs('{project['id']}')"))
    parent, kid = rows[root.id], rows[child.id]
    assert parent["input"] == {"question": "2+2?"} and parent["output"] == {"answer": 4}
    assert parent["scores"] == {"correct": 1} and parent["metadata"] == {"model": "m1", "tier": 2}
    assert parent["tags"] == ["t"] and parent["is_root"] is True and parent["span_parents"] is None
    assert parent["span_attributes"]["name"] == "handle" and parent["span_attributes"]["type"] == "task"
    assert parent["metrics"]["end"] >= parent["metrics"]["start"]
    assert parent["org_id"] == sdk_org.id and parent["log_id"] == "g"
    assert kid["root_span_id"] == parent["root_span_id"] and kid["span_parents"] == [parent["span_id"]]
    assert (
        kid["span_attributes"]["type"] == "llm" and kid["metrics"]["tokens"] == 7 and kid["is_root"] is False
    )
    assert [c["comment"]["text"] for c in parent["comments"]] == ["checked by hand"]
    assert parent["comments"][0]["metadata"] == {"by": "qa"}
    assert any(a["metadata"] == {"by": "qa"} for a in parent["audit_data"])


def test_experiment_logging_and_summary(
    sdk: Any, sandbox_server: SandboxServer, sdk_org: SandboxOrg, api: Api
) -> None:
    experiment = sdk.init(
        project="sdk-exp", experiment="baseline", api_key=sdk_org.api_key, app_url=sandbox_server.url
    )
    for i in range(3):
        experiment.log(input={"i": i}, output=i * 2, expected=i * 2, scores={"exact": 1 if i else 0})
    with experiment.start_span(name="custom", input="x") as span:
        span.log(output="y", scores={"exact": 1})
    summary = experiment.summarize()  # flushes, then GET /v1/experiment/{id}/summarize
    assert summary.experiment_name == "baseline"
    assert summary.scores["exact"].score == pytest.approx(0.75)

    rows = btql(api, f"experiment('{experiment.id}')")
    assert len(rows) == 4
    assert all(r["experiment_id"] == experiment.id and r["is_root"] for r in rows)
    logged = sorted(
        (r["input"]["i"], r["output"], r["expected"]) for r in rows if isinstance(r["input"], dict)
    )
    assert logged == [(0, 0, 0), (1, 2, 2), (2, 4, 4)]
    assert latest_by_id(rows)[span.id]["output"] == "y"


def test_dataset_inserts_updates_and_deletes(
    sdk: Any, sandbox_server: SandboxServer, sdk_org: SandboxOrg, api: Api
) -> None:
    dataset = sdk.init_dataset(
        project="sdk-ds", name="golden", api_key=sdk_org.api_key, app_url=sandbox_server.url
    )
    keep = dataset.insert(input={"q": "a"}, expected="A", metadata={"v": 1}, tags=["x"])
    gone = dataset.insert(input={"q": "b"}, expected="B")
    dataset.flush()
    dataset.update(id=keep, metadata={"v": 2})
    dataset.delete(gone)
    dataset.flush()

    rows = btql(api, f"dataset('{dataset.id}')")
    assert [r["id"] for r in rows] == [keep]
    [row] = rows
    assert row["input"] == {"q": "a"} and row["expected"] == "A" and row["tags"] == ["x"]
    assert row["metadata"] == {"v": 2} and row["dataset_id"] == dataset.id
    assert "output" not in row and "span_parents" not in row
    fetched = list(dataset.fetch())  # the SDK reads back through POST /v1/dataset/{id}/fetch
    assert {r["id"] for r in fetched} == {keep}
    assert dataset.summarize().data_summary.total_records == 1


def test_large_payloads_go_through_logs3_overflow(
    sdk: Any, sandbox_server: SandboxServer, sdk_org: SandboxOrg, api: Api
) -> None:
    """With a request-size limit on /logs3, ``GET /version`` advertises it and the SDK
    sends a larger batch through ``/logs3/overflow`` (upload to the signed URL, then a reference)."""
    from braintrust_migrate.sandbox.faults import FaultSettings, controller_of

    faults = controller_of(sandbox_server.app)
    background = sdk.logger._state.global_bg_logger()
    faults.set(FaultSettings(max_request_bytes=20_000, include_paths=("/logs3",)), org=sdk_org.name)
    background._max_request_size_result = None  # the SDK reads /version once per process
    try:
        dataset = sdk.init_dataset(project="sdk-big", name="big")
        row_id = dataset.insert(input={"blob": "x" * 50_000}, expected="y")
        uploads = background._overflow_upload_count
        dataset.flush()
        assert background._overflow_upload_count == uploads + 1
    finally:
        faults.set(None, org=sdk_org.name)
        background._max_request_size_result = None
    [row] = btql(api, f"dataset('{dataset.id}')")
    assert row["id"] == row_id and row["input"] == {"blob": "x" * 50_000}
