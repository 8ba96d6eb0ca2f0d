"""Attachment downloads go only where the source API may legitimately send us (issue case 2).

A source answering ``downloadUrl: http://127.0.0.1:<port>/latest/meta-data/...`` must not make
the tool GET that address and upload the answer into the destination, directly or through a
redirect; the attachment keeps its source reference and the notes say why. Everything here is
on loopback, so the end-to-end cases treat the source API as a remote origin (the rule's input)
by patching DownloadGuard.api_on_loopback; the address rules are tested with a fake resolver.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote

import httpx
import orjson
import pytest

from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.urlguard import DownloadGuard, DownloadRefused
from tests.integration.engine.harness import migrate
from tests.integration.events.helpers import all_rows, client, insert

CREDENTIALS = b'{"AccessKeyId": "ASIA-STOLEN", "SecretAccessKey": "internal-only"}'


class Victim(BaseHTTPRequestHandler):
    """An internal service (the cloud metadata endpoint): counts every request it gets."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Victim.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(CREDENTIALS)))
        self.end_headers()
        self.wfile.write(CREDENTIALS)

    def log_message(self, *_: Any) -> None:
        pass


class HostileSource:
    """ASGI middleware on the source: crafted downloadUrls and a same-origin redirector.

    GET /attachment for key ``ssrf-*``: downloadUrl is the victim; for ``hop-*``: the real
    answer's downloadUrl behind ``/_hop?to=`` (a same-origin 302). ``/_hop`` redirects to `to`.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.victim_url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode())
        key = query.get("key", [""])[0]
        base = f"http://{dict(scope['headers'])[b'host'].decode()}"
        if scope["path"] == "/_hop":
            location = query["to"][0].encode()
            await send({"type": "http.response.start", "status": 302, "headers": [(b"location", location)]})
            await send({"type": "http.response.body", "body": b""})
        elif scope["path"] == "/attachment" and scope["method"] == "GET" and key.startswith("ssrf-"):
            target = self.victim_url if key != "ssrf-hop" else f"{base}/_hop?to={quote(self.victim_url)}"
            await _json(send, {"downloadUrl": target, "status": {"upload_status": "done"}})
        elif scope["path"] == "/attachment" and scope["method"] == "GET" and key.startswith("hop-"):
            captured: dict[str, Any] = {"body": b""}

            async def keep(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.body":
                    captured["body"] += message.get("body", b"")

            await self.app(scope, receive, keep)
            answer = orjson.loads(captured["body"])
            answer["downloadUrl"] = f"{base}/_hop?to={quote(answer['downloadUrl'])}"
            await _json(send, answer)
        else:
            await self.app(scope, receive, send)


async def _json(send: Any, body: dict[str, Any]) -> None:
    data = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[SandboxServer, HostileSource]]:
    victim = ThreadingHTTPServer(("127.0.0.1", 0), Victim)
    threading.Thread(target=victim.serve_forever, daemon=True).start()
    server = SandboxServer()
    middleware = HostileSource(server.app)
    middleware.victim_url = f"http://127.0.0.1:{victim.server_port}/latest/meta-data/iam/credentials"
    server.app = middleware
    try:
        with server:
            yield server, middleware
    finally:
        victim.shutdown()
        victim.server_close()


@pytest.fixture
def remote_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """The source API counts as a remote origin (it is not, in a test): loopback is not allowed."""

    async def not_loopback(self: DownloadGuard) -> bool:
        return False

    monkeypatch.setattr(DownloadGuard, "api_on_loopback", not_loopback)


def _upload(url: str, org: SandboxOrg, key: str, data: bytes) -> dict[str, Any]:
    ref = {"type": "braintrust_attachment", "key": key, "filename": "a.bin", "content_type": "image/png"}
    with client(url, org) as c:
        body = {"key": key, "filename": "a.bin", "content_type": "image/png", "org_id": org.id}
        signed = c.post("/attachment", json=body).raise_for_status().json()
        httpx.put(signed["signedUrl"], content=data, headers=signed.get("headers") or {}).raise_for_status()
        c.post("/attachment/status", json={"key": key, "org_id": org.id, "status": {"upload_status": "done"}})
    return ref


def _download(url: str, org: SandboxOrg, ref: dict[str, Any]) -> bytes:
    with client(url, org) as c:
        params = {k: ref[k] for k in ("key", "filename", "content_type")} | {"org_id": org.id}
        location = c.get("/attachment", params=params).raise_for_status().json()["downloadUrl"]
    return httpx.get(location).raise_for_status().content


async def _migrate_rows(server: SandboxServer, make_rows: Any, tmp_path: Any) -> tuple:
    """Source rows from `make_rows(url, source org)`, migrated with attachments copied."""
    url, name = server.url, tmp_path.name
    src, dst = server.create_org(f"src-{name}"), server.create_org(f"dst-{name}")
    rows = make_rows(url, src)
    with client(url, src) as c:
        project = c.post("/v1/project", json={"name": "Attach"}).raise_for_status().json()
    insert(url, src, "project_logs", project["id"], rows)
    result = await migrate(url, src, dst, tmp_path, migration_copy_attachments=True)
    with client(url, dst) as c:
        dest_project = c.get("/v1/project", params={"project_name": "Attach"}).json()["objects"][0]["id"]
    copied = all_rows(url, dst, "project_logs", dest_project)
    notes = [n for c in result.report["events"]["containers"] for n in c["notes"]]
    return copied, notes, dst


def _ref(key: str) -> dict[str, Any]:
    return {"type": "braintrust_attachment", "key": key, "filename": "a.bin", "content_type": "image/png"}


@pytest.mark.parametrize("key", ["ssrf-meta", "ssrf-hop"])
async def test_internal_download_url_is_refused(hostile, remote_source, tmp_path, key):
    server, _ = hostile
    Victim.hits.clear()
    copied, notes, _ = await _migrate_rows(
        server, lambda url, org: [{"id": "a", "input": {"file": _ref(key)}}], tmp_path
    )
    assert Victim.hits == []  # the internal address was never requested
    assert copied["a"]["input"]["file"] == _ref(key)  # keeps its source reference
    assert any(
        f"attachment {key} not copied" in n and "refused: loopback address 127.0.0.1" in n for n in notes
    )
    assert not any("ASIA-STOLEN" in n or "meta-data/iam/credentials?" in n for n in notes)


async def test_same_origin_redirect_is_followed_byte_identical(hostile, remote_source, tmp_path):
    server, _ = hostile
    blob = bytes(range(256)) * 4099
    copied, notes, dst = await _migrate_rows(
        server, lambda url, org: [{"id": "a", "input": {"file": _upload(url, org, "hop-ok", blob)}}], tmp_path
    )
    new_ref = copied["a"]["input"]["file"]
    assert new_ref["key"] != "hop-ok", notes
    assert _download(server.url, dst, new_ref) == blob


def _resolver(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


DNS = {
    "blobs.example.com": ["52.216.8.10"],
    "api.braintrust.dev": ["54.1.2.3"],
    "metadata.google.internal": ["169.254.169.254"],
    "mixed.example.com": ["52.216.8.10", "10.0.0.7"],
    "v6.example.com": ["2600:1f18::1"],
    "localhost": ["127.0.0.1", "::1"],
}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/latest/meta-data/iam/credentials", "loopback address"),
        ("https://169.254.169.254/latest/meta-data/", "link-local address"),
        ("https://metadata.google.internal/computeMetadata/v1/", "link-local address"),
        ("https://10.1.2.3/blob", "private address"),
        ("https://192.168.0.1/blob", "private address"),
        ("https://172.16.5.5/blob", "private address"),
        ("https://100.64.0.1/blob", "reserved address"),
        ("https://0.0.0.0/blob", "unspecified address"),
        ("https://224.0.0.1/blob", "multicast address"),
        ("https://[::1]/blob", "loopback address"),
        ("https://[fe80::1]/blob", "link-local address"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "private address"),
        ("https://[::ffff:127.0.0.1]/blob", "loopback address"),
        ("https://[::ffff:169.254.169.254]/blob", "link-local address"),
        ("https://[64:ff9b::a9fe:a9fe]/blob", "link-local address"),
        ("https://[2002:a9fe:a9fe::1]/blob", "link-local address"),
        ("https://mixed.example.com/blob", "private address"),
        ("https://localhost:9000/blob", "loopback address"),
        ("https://nowhere.invalid/blob", "does not resolve"),
        ("http://blobs.example.com/blob", "plain http"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("ftp://blobs.example.com/blob", "not an http(s) URL"),
    ],
)
async def test_remote_source_refuses(url, reason):
    guard = DownloadGuard("https://api.braintrust.dev", resolve=_resolver(DNS))
    with pytest.raises(DownloadRefused, match=re.escape(reason)) as refused:
        await guard.check(url)
    assert "?" not in str(refused.value)  # a signed query is never shown


@pytest.mark.parametrize(
    "url",
    [
        "https://blobs.example.com/bucket/key?X-Amz-Signature=abc",
        "https://v6.example.com/blob",
        "https://api.braintrust.dev/attachment/blob?sig=1",
        "https://API.braintrust.dev:443/x",
    ],
)
async def test_remote_source_allows(url):
    await DownloadGuard("https://api.braintrust.dev", resolve=_resolver(DNS)).check(url)


async def test_internal_source_origin_is_allowed_but_not_its_neighbours():
    # A self-hosted data plane on a private address: its own origin is fine, nothing else there.
    guard = DownloadGuard("http://10.0.0.5:8000", resolve=_resolver(DNS))
    await guard.check("http://10.0.0.5:8000/attachment/blob?sig=1")
    with pytest.raises(DownloadRefused, match="private address"):
        await guard.check("http://10.0.0.5:9000/other")
    with pytest.raises(DownloadRefused, match="plain http"):
        await guard.check("http://blobs.example.com/blob")


async def test_loopback_source_allows_loopback_only():
    guard = DownloadGuard("http://127.0.0.1:5000", resolve=_resolver(DNS))
    await guard.check("http://127.0.0.1:6000/attachment/blob")
    await guard.check("http://localhost:6000/attachment/blob")
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x", "https://[fe80::1]/x"):
        with pytest.raises(DownloadRefused):
            await guard.check(url)
    named = DownloadGuard("http://localhost:5000", resolve=_resolver(DNS))
    assert await named.api_on_loopback()
