"""Fault injection over real HTTP: latency, 429, 5xx, 413, BTQL 504, dropped connections."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from braintrust_migrate.sandbox.faults import FaultSettings, FaultStats
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.sandbox.testing import unique_org_name

# A stand-in for POST /btql, mounted through extra_routes (it wins over any real one).
FAKE_BTQL_ROWS: list[dict[str, Any]] = [{"id": f"row-{i}"} for i in range(3)]


async def _fake_btql(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"data": FAKE_BTQL_ROWS, "schema": {}, "cursor": None})


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    """A server of this module's own: server-wide faults must not leak into other tests."""
    with SandboxServer(extra_routes=[Route("/btql", _fake_btql, methods=["POST"])]) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_faults_left(server: SandboxServer) -> Iterator[None]:
    server.clear_faults()
    yield
    server.clear_faults()


@pytest.fixture
def org(server: SandboxServer) -> SandboxOrg:
    return server.create_org(unique_org_name("faults"))


@pytest.fixture
def client(server: SandboxServer, org: SandboxOrg) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=_auth(org), timeout=10) as c:
        yield c


def _auth(org: SandboxOrg) -> dict[str, str]:
    return {"Authorization": f"Bearer {org.api_key}"}


def _projects(client: httpx.Client) -> list[str]:
    response = client.get("/v1/project")
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["objects"]]


# --- settings -----------------------------------------------------------------------------------


def test_settings_validate_and_round_trip() -> None:
    settings = FaultSettings.from_dict({"error_rate": 0.5, "methods": ["post"], "include_paths": ["/btql"]})
    assert settings.methods == ("POST",)
    assert FaultSettings.from_dict(settings.to_dict()) == settings
    for bad in (
        {"error_rate": 1.5},
        {"drop_phase": "sometimes"},
        {"no_such_fault": 1},
        {"error_statuses": [404]},
        {"include_paths": ["btql"]},
        {"max_concurrent_per_key": 0},
        {"rate_limit_rps": -1},
        {"seed": "x"},
    ):
        with pytest.raises(ValueError):
            FaultSettings.from_dict(bad)


# --- latency ------------------------------------------------------------------------------------


def test_latency_is_fixed_plus_bounded_jitter(server: SandboxServer, client: httpx.Client) -> None:
    server.set_faults(FaultSettings(latency_ms=60, latency_jitter_ms=40))
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        assert client.get("/v1/project").status_code == 200
        timings.append(time.perf_counter() - start)
    assert all(0.06 <= t < 0.06 + 0.04 + 0.25 for t in timings), timings
    assert len({round(t, 3) for t in timings}) > 1  # jitter varies
    assert server.fault_stats().delayed == 5
    server.clear_faults()
    start = time.perf_counter()
    client.get("/v1/project")
    assert time.perf_counter() - start < 0.3  # the injected latency is gone (it would be at least 0.3 s)


async def test_latency_does_not_block_other_requests(server: SandboxServer, org: SandboxOrg) -> None:
    server.set_faults(FaultSettings(latency_ms=300))
    async with httpx.AsyncClient(base_url=server.url, headers=_auth(org), timeout=10) as c:
        start = time.perf_counter()
        responses = await asyncio.gather(*(c.get("/v1/project") for _ in range(8)))
        elapsed = time.perf_counter() - start
    assert [r.status_code for r in responses] == [200] * 8
    assert 0.3 <= elapsed < 8 * 0.3  # concurrent sleeps: in sequence they would take 8 x 300 ms


# --- rate limits --------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_seconds(server: SandboxServer, client: httpx.Client) -> None:
    server.set_faults(FaultSettings(rate_limit_rps=2, rate_limit_burst=2))
    statuses = [client.get("/v1/project") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 429, 429]
    limited = statuses[2]
    assert limited.headers["retry-after"].isdigit() and int(limited.headers["retry-after"]) >= 1
    assert "error" in limited.json()
    time.sleep(int(limited.headers["retry-after"]))
    assert client.get("/v1/project").status_code == 200
    stats = server.fault_stats()
    assert (stats.rate_limited, stats.rate_limited_rps, stats.rate_limited_concurrency) == (2, 2, 0)


def test_rate_limit_retry_after_as_http_date(server: SandboxServer, client: httpx.Client) -> None:
    server.set_faults(FaultSettings(rate_limit_rps=1, retry_after_format="http-date", retry_after_seconds=2))
    assert client.get("/v1/project").status_code == 200
    limited = client.get("/v1/project")
    assert limited.status_code == 429
    when = email.utils.parsedate_to_datetime(limited.headers["retry-after"])
    ahead = (when - dt.datetime.now(dt.UTC)).total_seconds()
    assert 0.5 < ahead <= 3.0, limited.headers["retry-after"]


def test_rate_limit_is_per_key(server: SandboxServer, client: httpx.Client) -> None:
    other = server.create_org(unique_org_name("other"))
    server.set_faults(FaultSettings(rate_limit_rps=1))
    assert client.get("/v1/project").status_code == 200
    assert client.get("/v1/project").status_code == 429
    assert httpx.get(server.url + "/v1/project", headers=_auth(other)).status_code == 200


async def test_concurrency_limit_per_key(server: SandboxServer, org: SandboxOrg) -> None:
    other = server.create_org(unique_org_name("other"))
    server.set_faults(FaultSettings(max_concurrent_per_key=2, latency_ms=200))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        mine = [c.get("/v1/project", headers=_auth(org)) for _ in range(5)]
        theirs = c.get("/v1/project", headers=_auth(other))
        responses = await asyncio.gather(*mine, theirs)
    statuses = sorted(r.status_code for r in responses[:5])
    assert statuses == [200, 200, 429, 429, 429]
    assert all(r.headers["retry-after"] == "1" for r in responses[:5] if r.status_code == 429)
    assert responses[5].status_code == 200
    assert server.fault_stats().rate_limited_concurrency == 3
    # The slots are given back: sequential requests all pass.
    server.set_faults(FaultSettings(max_concurrent_per_key=1))
    with httpx.Client(base_url=server.url, headers=_auth(org)) as c:
        assert [c.get("/v1/project").status_code for _ in range(3)] == [200] * 3


# --- random 5xx ---------------------------------------------------------------------------------


def _statuses(client: httpx.Client, n: int) -> list[tuple[int, str]]:
    out = []
    for _ in range(n):
        r = client.get("/v1/project")
        out.append((r.status_code, r.headers["content-type"].split(";")[0]))
    return out


def test_error_rate_is_roughly_as_configured_and_reproducible(
    server: SandboxServer, client: httpx.Client
) -> None:
    settings = FaultSettings(error_rate=0.3, seed=7)
    server.set_faults(settings)
    first = _statuses(client, 120)
    errors = [s for s in first if s[0] != 200]
    assert 18 <= len(errors) <= 54, len(errors)
    assert {s for s, _ in errors} <= {500, 502, 503, 504} and len({s for s, _ in errors}) >= 3
    assert {ct for _, ct in errors} == {"application/json", "text/plain"}
    stats = server.fault_stats()
    assert stats.server_errors == len(errors) and sum(stats.server_errors_by_status.values()) == len(errors)

    server.set_faults(settings)  # a fresh RNG with the same seed: the very same sequence
    assert _statuses(client, 120) == first
    server.set_faults(FaultSettings(error_rate=0.3, seed=8))
    assert _statuses(client, 120) != first


def test_error_statuses_and_body_can_be_chosen(server: SandboxServer, client: httpx.Client) -> None:
    server.set_faults(FaultSettings(error_rate=1, error_statuses=(503,), error_body="text"))
    response = client.get("/v1/project")
    assert response.status_code == 503 and response.headers["content-type"].startswith("text/plain")


def test_failed_requests_write_nothing(server: SandboxServer, client: httpx.Client, org: SandboxOrg) -> None:
    writes = server.write_count(org.api_key)
    for settings in (
        FaultSettings(error_rate=1),
        FaultSettings(rate_limit_rps=0.01, rate_limit_burst=1),
        FaultSettings(max_request_bytes=10),
        FaultSettings(drop_rate=1, drop_phase="before"),
    ):
        server.set_faults(settings)
        if settings.rate_limit_rps:
            assert client.get("/v1/project").status_code == 200  # takes the only token
        for _ in range(2):
            try:
                response = client.post("/v1/project", json={"name": "never"})
                assert response.status_code in (413, 429, 500, 502, 503, 504), response.text
            except httpx.TransportError:
                assert settings.drop_rate == 1
        server.clear_faults()
    assert _projects(client) == []
    assert server.write_count(org.api_key) == writes


# --- 413 ----------------------------------------------------------------------------------------


def test_request_too_large_by_content_length_and_by_streamed_size(
    server: SandboxServer, client: httpx.Client
) -> None:
    server.set_faults(FaultSettings(max_request_bytes=10_000))
    big = orjson.dumps({"name": "big", "description": "x" * 20_000})
    response = client.post("/v1/project", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "10000" in response.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    response = client.post("/v1/project", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    # One chunk holding the whole body: the limit is crossed by the body's last message.
    response = client.post("/v1/project", content=iter([big]), headers={"content-type": "application/json"})
    assert response.status_code == 413
    # Just under the limit, streamed or not: the app gets the whole body.
    small = orjson.dumps({"name": "small", "description": "y" * 9_000})
    assert client.post("/v1/project", content=small, headers={"content-type": "application/json"}).is_success
    response = client.post(
        "/v1/project",
        content=iter([small[:5000], small[5000:]]),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["name"] == "small"
    assert server.fault_stats().too_large == 3
    assert _projects(client) == ["small"]


# --- BTQL 504 -----------------------------------------------------------------------------------


def test_btql_pages_above_the_row_limit_time_out(server: SandboxServer, client: httpx.Client) -> None:
    server.set_faults(FaultSettings(btql_max_rows=500))

    def btql(query: Any) -> httpx.Response:
        return client.post("/btql", json={"query": query, "fmt": "json", "api_version": 1})

    text = "select: *\nfrom: project_logs('{pid}') spans\nsort: _pagination_key asc\nlimit: {n}\n"
    assert btql(text.format(pid="p", n=1000)).status_code == 504
    ok = btql(text.format(pid="p", n=500))
    assert ok.status_code == 200 and ok.json()["data"] == FAKE_BTQL_ROWS
    assert btql({"select": [{"op": "star"}], "limit": 2000}).status_code == 504
    assert btql({"select": [{"op": "star"}], "limit": 10}).status_code == 200
    assert btql("select: *\nfrom: project_logs('p') spans").status_code == 504  # default page: 1000 rows
    unbounded = {"query": "select: *\nfrom: project_logs('p') spans", "disable_limit": True}
    assert client.post("/btql", json=unbounded).status_code == 504
    bounded = {"query": "select: *\nfrom: project_logs('p') spans\nlimit: 5", "disable_limit": True}
    assert client.post("/btql", json=bounded).status_code == 200
    timeout = btql(text.format(pid="p", n=501))
    assert "error" in timeout.json()
    assert server.fault_stats().btql_timeouts == 5
    # Other paths are not affected by the BTQL limit.
    assert client.get("/v1/project").status_code == 200


def test_btql_limit_against_the_real_endpoint(sandbox_server: SandboxServer, sandbox_org: SandboxOrg) -> None:
    headers = _auth(sandbox_org)
    project = httpx.post(sandbox_server.url + "/v1/project", json={"name": "p"}, headers=headers).json()
    query = "select: *\nfrom: project_logs('{pid}') spans\nlimit: {n}"

    def btql(n: int) -> httpx.Response:
        body = {"query": query.format(pid=project["id"], n=n), "fmt": "json"}
        return httpx.post(sandbox_server.url + "/btql", json=body, headers=headers)

    if btql(10).status_code in (404, 405):
        pytest.skip("the sandbox has no POST /btql yet")
    sandbox_server.set_faults(FaultSettings(btql_max_rows=100), org=sandbox_org.name)
    try:
        assert btql(1000).status_code == 504
        small = btql(100)
        assert small.status_code == 200 and small.json()["data"] == []
    finally:
        sandbox_server.set_faults(None, org=sandbox_org.name)
    assert btql(1000).status_code == 200


# --- dropped connections ------------------------------------------------------------------------


def test_drop_before_the_app_writes_nothing(
    server: SandboxServer, client: httpx.Client, org: SandboxOrg
) -> None:
    writes = server.write_count(org.api_key)
    server.set_faults(FaultSettings(drop_rate=1, drop_phase="before"))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post("/v1/project", json={"name": "lost"})
    server.clear_faults()
    assert _projects(client) == []
    assert server.write_count(org.api_key) == writes


def test_drop_after_the_app_keeps_the_write_and_loses_the_response(
    server: SandboxServer, client: httpx.Client
) -> None:
    server.set_faults(FaultSettings(drop_rate=1, drop_phase="after"))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post("/v1/project", json={"name": "kept"})
    server.clear_faults()
    assert _projects(client) == ["kept"]
    # An idempotent retry finds the same project instead of making a second one.
    retried = client.post("/v1/project", json={"name": "kept"})
    assert retried.status_code == 200 and _projects(client) == ["kept"]


def test_drop_phase_random_does_both_and_stats_count_them(
    server: SandboxServer, client: httpx.Client
) -> None:
    server.set_faults(FaultSettings(drop_rate=1, seed=3))
    for _ in range(16):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.get("/v1/project")
    stats = server.fault_stats()
    assert stats.drops == 16 and stats.drops_before > 0 and stats.drops_after > 0
    assert stats.drops_before + stats.drops_after == 16
    server.clear_faults()
    assert client.get("/v1/project").status_code == 200  # the server itself is fine


# --- scopes and filters -------------------------------------------------------------------------


def test_org_settings_replace_the_server_wide_ones(server: SandboxServer, org: SandboxOrg) -> None:
    calm = server.create_org(unique_org_name("calm"))
    other = server.create_org(unique_org_name("other"))
    server.set_faults(FaultSettings(error_rate=1))
    server.set_faults(FaultSettings(), org=calm.name)  # no faults for this org
    server.set_faults(FaultSettings(error_rate=1, error_statuses=(502,)), org=org.name)

    def status(o: SandboxOrg) -> int:
        return httpx.get(server.url + "/v1/project", headers=_auth(o)).status_code

    assert status(calm) == 200
    assert status(org) == 502
    assert status(other) >= 500
    assert server.fault_stats(org.name).server_errors_by_status == {502: 1}
    assert server.fault_stats(calm.name) == FaultStats(requests=1)
    assert server.fault_stats().server_errors == 2
    server.set_faults(None, org=org.name)  # back to the server-wide settings
    assert status(org) >= 500
    with pytest.raises(ValueError, match="unknown org"):
        server.set_faults(FaultSettings(), org="no-such-org")


def test_per_org_faults_on_the_shared_server(sandbox_server: SandboxServer, sandbox_orgs: Any) -> None:
    source, dest = sandbox_orgs.source, sandbox_orgs.dest
    sandbox_server.set_faults(FaultSettings(error_rate=1, error_statuses=(503,)), org=source.name)
    try:
        assert httpx.get(sandbox_server.url + "/v1/project", headers=_auth(source)).status_code == 503
        assert httpx.get(sandbox_server.url + "/v1/project", headers=_auth(dest)).status_code == 200
    finally:
        sandbox_server.set_faults(None, org=source.name)
    assert httpx.get(sandbox_server.url + "/v1/project", headers=_auth(source)).status_code == 200


def test_path_and_method_filters(server: SandboxServer, client: httpx.Client) -> None:
    server.set_faults(FaultSettings(error_rate=1, include_paths=("/btql",)))
    assert client.get("/v1/project").status_code == 200
    assert client.post("/btql", json={"query": "limit: 1"}).status_code >= 500

    server.set_faults(FaultSettings(error_rate=1, methods=("POST", "PATCH", "PUT", "DELETE")))
    assert client.get("/v1/project").status_code == 200
    assert client.post("/v1/project", json={"name": "x"}).status_code >= 500

    server.set_faults(FaultSettings(error_rate=1, exclude_paths=("/v1/project",)))
    assert client.get("/v1/project").status_code == 200
    assert client.get("/v1/project_score").status_code >= 500  # prefixes match whole segments
    assert client.get("/v1/dataset").status_code >= 500


def test_index_admin_and_options_are_never_faulted(server: SandboxServer) -> None:
    server.set_faults(FaultSettings(error_rate=1, drop_rate=1, rate_limit_rps=0.001, max_request_bytes=0))
    for _ in range(3):
        assert httpx.get(server.url + "/v1").text == "Hello, World!"
        assert httpx.options(server.url + "/v1/project").status_code == 200
        assert httpx.get(server.url + "/_sandbox/health").json() == {"status": "ok"}
    assert server.fault_stats().requests == 0


# --- admin API and CLI --------------------------------------------------------------------------


def test_admin_endpoint_sets_reads_and_clears_faults(
    server: SandboxServer, client: httpx.Client, org: SandboxOrg
) -> None:
    admin = httpx.Client(base_url=server.url, headers={"X-Sandbox-Admin-Key": server.admin_key})
    url = "/_sandbox/faults"
    assert httpx.get(server.url + url).status_code == 401
    assert admin.get(url).json()["server"] is None

    made = admin.put(url, json={"settings": {"error_rate": 1, "error_statuses": [500]}})
    assert made.status_code == 200 and made.json()["server"]["error_rate"] == 1.0
    assert client.get("/v1/project").status_code == 500
    view = admin.get(url).json()
    assert view["stats"]["server_errors"] == 1 and view["stats"]["server_errors_by_status"] == {"500": 1}

    assert admin.put(url, json={"org": org.name, "settings": {}}).json()["orgs"] == {
        org.name: FaultSettings().to_dict()
    }
    assert client.get("/v1/project").status_code == 200
    assert admin.get(url).json()["stats_by_scope"][f"org:{org.name}"]["requests"] == 1
    assert admin.put(url, json={"org": org.name, "settings": None}).json()["orgs"] == {}

    assert admin.put(url, json={"settings": {"error_rate": 7}}).status_code == 400
    assert admin.put(url, json={"settings": {"bogus": 1}}).status_code == 400
    assert admin.put(url, json={"org": "no-such-org", "settings": {}}).status_code == 400
    assert admin.put(url, json={"error_rate": 1}).status_code == 400

    cleared = admin.delete(url).json()
    assert cleared["server"] is None and cleared["stats"]["injected"] == 0
    assert client.get("/v1/project").status_code == 200
    admin.close()


def test_serve_flags_configure_faults(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from braintrust_migrate.sandbox.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["serve", "--port", "0", "--error-rate", "2"])
    assert bad.exit_code == 2 and "error_rate" in bad.output and "Traceback" not in bad.output
    faults_file = tmp_path / "faults.yaml"
    faults_file.write_text("orgs:\n  nowhere: {error_rate: 1}\n")
    bad = runner.invoke(app, ["serve", "--port", "0", "--faults-file", str(faults_file)])
    assert bad.exit_code == 2 and "unknown org" in bad.output


def test_serve_subprocess_with_fault_flags(tmp_path: Any) -> None:
    import re
    import subprocess
    import sys

    faults_file = tmp_path / "faults.yaml"
    faults_file.write_text("orgs:\n  calm: {}\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "braintrust_migrate.sandbox.cli",
            "serve",
            "--port",
            "0",
            "--org",
            "noisy=sk-noisy-key",
            "--org",
            "calm=sk-calm-key",
            "--admin-key",
            "sandbox-admin-test",
            "--error-rate",
            "1",
            "--fault-method",
            "GET",
            "--fault-exclude-path",
            "/v1/organization",
            "--max-request-bytes",
            "5000",
            "--fault-seed",
            "4",
            "--faults-file",
            str(faults_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        while not lines or "Ctrl-C" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, f"server exited early: {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line)
        assert any("fault injection is on" in line for line in lines)
        url = re.search(r"http://\S+", lines[0]).group(0)  # type: ignore[union-attr]
        noisy, calm = {"Authorization": "Bearer sk-noisy-key"}, {"Authorization": "Bearer sk-calm-key"}
        assert httpx.get(url + "/v1/project", headers=noisy).status_code >= 500
        assert httpx.get(url + "/v1/organization", headers=noisy).status_code == 200
        assert httpx.get(url + "/v1/project", headers=calm).status_code == 200
        view = httpx.get(
            url + "/_sandbox/faults", headers={"X-Sandbox-Admin-Key": "sandbox-admin-test"}
        ).json()
        assert view["server"]["seed"] == 4 and view["server"]["methods"] == ["GET"]
        assert view["server"]["max_request_bytes"] == 5000 and view["orgs"] == {
            "calm": FaultSettings().to_dict()
        }
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
