"""Security properties of the sandbox server, judged over plain HTTP / raw sockets / the file system."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.sandbox.testing import unique_org_name

CLI = str(Path(sys.executable).with_name("braintrust-migrate"))
MIB = 1024 * 1024


def _raw_request(url: str, head: str, body_start: bytes = b"") -> str:
    """Send a request head (plus the start of a body it announces) and read the answer.

    The announced body is never sent in full, so an answer proves the server did not wait
    for (read) the body; an old server that waited hits the socket timeout instead.
    """
    host, port = httpx.URL(url).host, httpx.URL(url).port
    with socket.create_connection((host, port), timeout=15) as sock:
        sock.sendall(head.encode() + b"\r\n" + body_start)
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode("latin-1")


def _length(data: bytes) -> int:
    match = re.search(rb"content-length: (\d+)", data.partition(b"\r\n\r\n")[0], re.IGNORECASE)
    return int(match.group(1)) if match else 0


def _status(answer: str) -> int:
    match = re.match(r"HTTP/1\.1 (\d{3})", answer)
    assert match, f"no HTTP answer: {answer[:200]!r}"
    return int(match.group(1))


def _head(method: str, path: str, url: str, length: int, key: str | None = None) -> str:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {httpx.URL(url).host}:{httpx.URL(url).port}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return "\r\n".join(lines) + "\r\n"


def _client(server: SandboxServer, key: str | None = None, **kwargs: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30, **kwargs)


# --- authentication before the body, and the body cap -------------------------------------------


@pytest.mark.parametrize("key", [None, "sk-not-a-real-key"])
@pytest.mark.parametrize(("method", "path"), [("PUT", "/v1/prompt"), ("POST", "/logs3"), ("POST", "/btql")])
def test_unauthenticated_body_is_refused_unread(
    sandbox_server: Any, key: str | None, method: str, path: str
) -> None:
    answer = _raw_request(
        sandbox_server.url, _head(method, path, sandbox_server.url, 200 * MIB, key), b"{" + b" " * 4096
    )
    assert _status(answer) == 401
    assert "API key" in answer or "Authorization" in answer


def test_unknown_overflow_upload_key_is_refused_unread(sandbox_server: Any) -> None:
    path = "/_sandbox/logs3-overflow/logs3-overflow-" + uuid.uuid4().hex
    answer = _raw_request(sandbox_server.url, _head("PUT", path, sandbox_server.url, 60 * MIB), b"x" * 4096)
    assert _status(answer) == 404


def test_body_over_the_default_cap_is_413_before_it_is_read(sandbox_server: Any, sandbox_org: Any) -> None:
    head = _head("POST", "/logs3", sandbox_server.url, 64 * MIB + 1, sandbox_org.api_key)
    answer = _raw_request(sandbox_server.url, head, b"{" + b" " * 4096)
    assert _status(answer) == 413
    assert str(64 * MIB) in answer


def test_chunked_body_over_a_configured_cap_is_413() -> None:
    with SandboxServer(max_body_bytes=10_000) as server:
        org = server.create_org(unique_org_name())
        with _client(server, org.api_key) as client:
            small = client.post("/v1/project", json={"name": "fits"})
            assert small.status_code == 200
            pieces = (b'{"name": "' + b"x" * 5000, b"x" * 5000, b"x" * 5000 + b'"}')
            big = client.post("/v1/project", content=iter(pieces))  # no Content-Length: chunked
            assert big.status_code == 413, big.text
            assert "10000" in big.json()["error"]
            assert client.get("/v1/project", params={"project_name": "x" * 10}).status_code == 200


def test_default_cap_is_above_the_tools_largest_inserts(sandbox_server: Any, sandbox_org: Any) -> None:
    with _client(sandbox_server, sandbox_org.api_key) as client:
        project = client.post("/v1/project", json={"name": "big"}).json()
        event = {"id": "big-row", "input": "x" * (6 * MIB)}  # above the tool's 5.5 MiB batches
        out = client.post(f"/v1/project_logs/{project['id']}/insert", json={"events": [event]})
        assert out.status_code == 200, out.text[:200]


# --- Host header and CORS -----------------------------------------------------------------------


def test_unknown_host_header_is_refused(sandbox_server: Any, sandbox_org: Any) -> None:
    port = sandbox_server.port
    with _client(sandbox_server, sandbox_org.api_key) as client:
        for host in (f"evil.example:{port}", "sandbox.attacker.test", f"localhost.evil.example:{port}"):
            response = client.get("/v1/project", headers={"Host": host})
            assert response.status_code == 421, host
            assert "Host" in response.json()["error"]
        assert client.get("/version", headers={"Host": f"evil.example:{port}"}).status_code == 421
        for host in (
            f"127.0.0.1:{port}",
            f"localhost:{port}",
            f"[::1]:{port}",
            "LOCALHOST",
            f"10.1.2.3:{port}",
        ):
            assert client.get("/v1/project", headers={"Host": host}).status_code == 200, host


def test_extra_allowed_hosts() -> None:
    with SandboxServer(allowed_hosts=["sandbox.internal"]) as server:
        org = server.create_org(unique_org_name())
        with _client(server, org.api_key) as client:
            assert client.get("/v1/project", headers={"Host": "sandbox.internal:8000"}).status_code == 200
            assert client.get("/v1/project", headers={"Host": "other.internal"}).status_code == 421
    with SandboxServer(allowed_hosts=["*"]) as server, _client(server) as client:
        assert client.get("/v1", headers={"Host": "anything.example"}).status_code == 200


def test_cors_wildcard_without_credentials(sandbox_server: Any) -> None:
    response = httpx.options(
        sandbox_server.url + "/v1/project",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


# --- invites and not-found answers --------------------------------------------------------------


def test_invite_by_foreign_user_id_is_not_found(sandbox_server: Any, sandbox_orgs: Any) -> None:
    secret_email = f"only-in-a-{uuid.uuid4().hex[:8]}@example.com"
    with (
        _client(sandbox_server, sandbox_orgs.source.api_key) as a,
        _client(sandbox_server, sandbox_orgs.dest.api_key) as b,
    ):
        invited = a.patch("/v1/organization/members", json={"invite_users": {"emails": [secret_email]}})
        foreign_id = invited.json()["added_users"][0]["id"]
        unknown_id = str(uuid.uuid4())
        answers = []
        for user_id in (foreign_id, unknown_id):
            response = b.patch("/v1/organization/members", json={"invite_users": {"ids": [user_id]}})
            answers.append((response.status_code, response.json()["error"].replace(user_id, "<id>")))
            assert secret_email not in response.text
        assert answers[0] == answers[1]
        assert answers[0][0] in (400, 404)
        assert b.get(f"/v1/user/{foreign_id}").status_code == 404
        assert foreign_id not in [u["id"] for u in b.get("/v1/user").json()["objects"]]


@pytest.fixture
def foreign(sandbox_server: Any, sandbox_orgs: Any) -> Iterator[dict[str, Any]]:
    """Objects of org A, and a client of org B that probes them."""
    with _client(sandbox_server, sandbox_orgs.source.api_key) as a:
        project = a.post("/v1/project", json={"name": "hidden"}).json()
        pid = project["id"]
        experiment = a.post("/v1/experiment", json={"project_id": pid, "name": "e"}).json()
        dataset = a.post("/v1/dataset", json={"project_id": pid, "name": "d"}).json()
    with _client(sandbox_server, sandbox_orgs.dest.api_key) as b:
        own = b.post("/v1/project", json={"name": "mine"}).json()
        yield {
            "project": pid,
            "experiment": experiment["id"],
            "dataset": dataset["id"],
            "own": own["id"],
            "b": b,
        }


def _answer(client: httpx.Client, method: str, path: str, object_id: str, **kwargs: Any) -> tuple[int, str]:
    kwargs = {k: _subst(v, object_id) for k, v in kwargs.items()}
    response = client.request(method, path.replace("<id>", object_id), **kwargs)
    return response.status_code, response.text.replace(object_id, "<id>")


def _subst(value: Any, object_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("<id>", object_id)
    if isinstance(value, dict):
        return {k: _subst(v, object_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_subst(v, object_id) for v in value]
    return value


PROBES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("project", "GET", "/v1/project/<id>", {}),
    ("experiment", "PATCH", "/v1/experiment/<id>", {"json": {"description": "x"}}),
    ("dataset", "DELETE", "/v1/dataset/<id>", {}),
    ("experiment", "POST", "/v1/experiment/<id>/insert", {"json": {"events": [{"input": 1}]}}),
    ("dataset", "POST", "/v1/dataset/<id>/fetch", {"json": {}}),
    ("project", "POST", "/btql", {"json": {"query": "select: * | from: project_logs('<id>')"}}),
    ("project", "GET", "/v1/project", {"params": {"starting_after": "<id>"}}),
    ("project", "POST", "/v1/experiment", {"json": {"project_id": "<id>", "name": "x"}}),
]


@pytest.mark.parametrize(
    ("kind", "method", "path", "kwargs"), PROBES, ids=[p[1] + " " + p[2] for p in PROBES]
)
def test_foreign_ids_answer_like_unknown_ids(
    foreign: dict[str, Any], kind: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    b = foreign["b"]
    seen = _answer(b, method, path, foreign[kind], **kwargs)
    unknown = _answer(b, method, path, str(uuid.uuid4()), **kwargs)
    assert seen == unknown
    assert seen[0] >= 400


def test_foreign_references_in_create_bodies_answer_like_unknown_ids(foreign: dict[str, Any]) -> None:
    b = foreign["b"]
    for field, kind in (("dataset_id", "dataset"), ("base_exp_id", "experiment")):
        body = {"project_id": foreign["own"], "name": f"ref-{field}", field: "<id>"}
        seen = _answer(b, "POST", "/v1/experiment", foreign[kind], json=body)
        unknown = _answer(b, "POST", "/v1/experiment", str(uuid.uuid4()), json=body)
        assert seen == unknown
        assert seen[0] == 400 and "another organization" not in seen[1]


# --- BTQL limits --------------------------------------------------------------------------------


def _btql(sandbox_server: Any, key: str, query: str) -> httpx.Response:
    with _client(sandbox_server, key) as client:
        return client.post("/btql", json={"query": query})


def test_deeply_nested_btql_is_400(sandbox_server: Any, sandbox_org: Any) -> None:
    with _client(sandbox_server, sandbox_org.api_key) as client:
        pid = client.post("/v1/project", json={"name": "q"}).json()["id"]
    source = f"select: * | from: project_logs('{pid}') | filter: "
    for nested in (
        "(" * 5000 + "id = 'a'" + ")" * 5000,
        "not " * 5000 + "id = 'a'",
        "(" * 65 + "id='a'" + ")" * 65,
    ):
        response = _btql(sandbox_server, sandbox_org.api_key, source + nested)
        assert response.status_code == 400, response.text[:200]
        assert "64" in response.json()["error"]
    ok = _btql(sandbox_server, sandbox_org.api_key, source + "(" * 60 + "id = 'a'" + ")" * 60)
    assert ok.status_code == 200
    wide = " or ".join(f"id = 'r{i}'" for i in range(3000))  # SQLite's own depth limit is 1000
    assert _btql(sandbox_server, sandbox_org.api_key, source + wide).status_code == 200
    huge = _btql(sandbox_server, sandbox_org.api_key, source + "id = '" + "x" * 1_100_000 + "'")
    assert huge.status_code == 400 and "limit" in huge.json()["error"]


# --- database file permissions ------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "sandbox.db"
        with SandboxServer(str(db)) as server:
            server.create_org(unique_org_name(), api_key="sk-secret-" + uuid.uuid4().hex)
            for name in ("sandbox.db", "sandbox.db-wal", "sandbox.db-shm"):
                assert (tmp_path / name).exists(), name
                assert _mode(tmp_path / name) == 0o600, name
        existing = tmp_path / "old.db"
        existing.touch(mode=0o644)
        os.chmod(existing, 0o644)
        with SandboxServer(str(existing)):
            assert _mode(existing) == 0o600
    finally:
        os.umask(old)


# --- keys from the environment, warnings for keys on the command line ---------------------------


def _serve(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start ``sandbox serve``; returns the process, its URL and its stdout lines up to the banner."""
    proc = subprocess.Popen(
        [CLI, "sandbox", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("press Ctrl-C"):
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(60):
        proc.kill()
        pytest.fail(f"sandbox serve did not start: {lines}")
    url = next(line.split()[-1] for line in lines if "listening on" in line)
    return proc, url, lines


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    return err


def test_keys_from_the_environment(tmp_path: Path) -> None:
    src, dst, admin = ("sk-env-" + uuid.uuid4().hex for _ in range(3))
    env = {"BT_SANDBOX_ORGS": f"source={src}, dest={dst}", "BT_SANDBOX_ADMIN_KEY": admin}
    proc, url, _ = _serve([], env)
    try:
        for key in (src, dst):
            assert (
                httpx.get(url + "/v1/project", headers={"Authorization": f"Bearer {key}"}).status_code == 200
            )
        orgs = httpx.get(url + "/_sandbox/orgs", headers={"X-Sandbox-Admin-Key": admin})
        assert orgs.status_code == 200 and {o["name"] for o in orgs.json()} == {"source", "dest"}
    finally:
        err = _stop(proc)
    assert "warning" not in err


def test_keys_on_the_command_line_warn() -> None:
    key = "sk-flag-" + uuid.uuid4().hex
    proc, url, _ = _serve(["--org", f"source={key}", "--admin-key", "adm-flag"], {})
    try:
        assert httpx.get(url + "/v1/project", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    finally:
        err = _stop(proc)
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and all("ps" in w for w in warnings)
    assert "--org" in warnings[0] and "--admin-key" in warnings[1]
    assert key not in err


def test_bad_orgs_env_is_one_line_exit_2() -> None:
    result = subprocess.run(
        [CLI, "sandbox", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "BT_SANDBOX_ORGS": "source=sk-ok,=sk-leaky-secret"},
        timeout=60,
    )
    assert result.returncode == 2
    assert "BT_SANDBOX_ORGS" in result.stderr and "sk-leaky-secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
