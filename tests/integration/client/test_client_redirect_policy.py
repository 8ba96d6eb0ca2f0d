"""The redirect policy (client/redirects.py) and the key's scope (client/auth.py), table-driven,
plus the rules httpx alone would break, end to end through the client."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from braintrust_migrate.client import ApiClient, ApiError, RedirectRefused
from braintrust_migrate.client.auth import AUTHENTICATED, ApiKeyAuth
from braintrust_migrate.client.redirects import (
    MAX_REDIRECTS,
    RULES,
    NotFollowed,
    RedirectLayer,
    Refused,
    Rules,
    origin,
)
from tests.unit.fakes import FakeApi, make_client

API = "https://api.example.test"
KEY = "sk-redirect-policy-key-01"


def rules(base: str = API, **kw: object) -> Rules:
    return Rules(origin(base), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "method", "location", "url", "next_method"),
    [
        (307, "POST", "/v1/new", f"{API}/v1/new", "POST"),
        (308, "PUT", f"{API}/v1/y", f"{API}/v1/y", "PUT"),
        (302, "PUT", "/v1/y", f"{API}/v1/y", "PUT"),  # httpx alone would turn it into a GET
        (302, "DELETE", "/v1/y", f"{API}/v1/y", "DELETE"),
        (301, "POST", "/v1/y", f"{API}/v1/y", "GET"),
        (302, "POST", "https://blobs.example.net/r", "https://blobs.example.net/r", "GET"),
        (303, "POST", "https://blobs.example.net/r", "https://blobs.example.net/r", "GET"),
        (303, "PATCH", "/done", f"{API}/done", "GET"),
        (303, "HEAD", "/done", f"{API}/done", "HEAD"),
        (302, "GET", "https://other.example.net/a", "https://other.example.net/a", "GET"),
        (301, "GET", "b", f"{API}/v1/b", "GET"),  # relative to the current URL
    ],
)
async def test_followed(status: int, method: str, location: str, url: str, next_method: str) -> None:
    hop = await rules().next_hop(status, f"{API}/v1/a", location, method)
    assert (hop.url, hop.method, hop.keep_body) == (url, next_method, next_method == method)


@pytest.mark.parametrize(
    ("status", "method", "current", "location", "reason"),
    [
        (307, "POST", f"{API}/btql", "https://evil.example.net/c", "another origin"),
        (308, "PUT", f"{API}/v1/x", "https://other.test/v1/x", "another origin"),
        (302, "PATCH", f"{API}/v1/x", "https://other.test/v1/x", "another origin"),
        (307, "DELETE", f"{API}/v1/x", "http://api.example.test:443/v1/x", "downgrades"),
        (302, "GET", f"{API}/v1/a", "http://api.example.test/v1/b", "downgrades https to http"),
        (302, "GET", "http://127.0.0.1:9/a", "http://plain.example.org/b", "BT_ALLOW_INSECURE_HTTP"),
        (301, "GET", f"{API}/v1/a", "https://api.example.test:99999/b", "not a usable URL"),
        (301, "GET", f"{API}/v1/a", "https://api.example.test:port/x", "not a usable URL"),
        (301, "GET", f"{API}/v1/a", "ftp://x.test/y", r"not an http\(s\) URL"),
    ],
)
async def test_refused(status: int, method: str, current: str, location: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        await rules().next_hop(status, current, location, method)


async def test_plain_http_elsewhere_only_when_allowed() -> None:
    hop = await rules("http://127.0.0.1:9", allow_insecure_http=True).next_hop(
        302, "http://127.0.0.1:9/a", "http://plain.example.org/b", "GET"
    )
    assert hop.url == "http://plain.example.org/b"


async def test_at_most_max_redirects_in_a_row() -> None:
    policy = rules()
    for _ in range(MAX_REDIRECTS):
        await policy.next_hop(302, f"{API}/a", "/a", "GET")
    with pytest.raises(Refused, match=f"more than {MAX_REDIRECTS} redirects") as info:
        await policy.next_hop(302, f"{API}/a", "/b", "GET")
    assert info.value.url == f"{API}/b"


async def test_blob_redirects_need_a_check_which_sees_every_hop() -> None:
    with pytest.raises(NotFollowed, match=r"blob download redirected \(302\)"):
        await rules(blob=True).next_hop(302, "https://blobs.test/a", "/b", "GET")
    seen: list[str] = []

    async def check(url: str) -> None:
        seen.append(url)

    policy = rules(blob=True, check=check)
    for hop in range(MAX_REDIRECTS):
        await policy.next_hop(302, "https://blobs.test/a", f"/b{hop}", "GET")
    assert seen == [f"https://blobs.test/b{hop}" for hop in range(MAX_REDIRECTS)]
    with pytest.raises(NotFollowed):
        await policy.next_hop(302, "https://blobs.test/a", "/c", "GET")


# --- the layer: what httpx is shown -----------------------------------------------------------


class Unread(httpx.AsyncByteStream):
    """A body that must never be read (a redirect's body could be a decompression bomb)."""

    read = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        Unread.read = True
        yield b"x" * 100


@pytest.mark.parametrize(
    ("status", "method", "shown"),
    [(302, "PUT", 307), (301, "GET", 307), (308, "POST", 307), (302, "POST", 303), (303, "PUT", 303)],
)
async def test_the_layer_hands_httpx_the_decided_hop(status: int, method: str, shown: int) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"location": "/v1/next", "content-encoding": "gzip", "x-kept": "1"}
        return httpx.Response(status, headers=headers, stream=Unread())

    layer = RedirectLayer(httpx.MockTransport(answer))
    Unread.read = False
    request = httpx.Request(method, f"{API}/v1/a", extensions={RULES: rules()})
    response = await layer.handle_async_request(request)
    assert response.status_code == shown
    assert response.headers["location"] == f"{API}/v1/next"
    assert "content-encoding" not in response.headers and response.headers["x-kept"] == "1"
    assert not Unread.read


async def test_a_request_without_rules_is_never_redirected() -> None:
    layer = RedirectLayer(httpx.MockTransport(lambda r: httpx.Response(307, headers={"location": "/x"})))
    response = await layer.handle_async_request(httpx.Request("PUT", "https://blobs.test/upload"))
    assert response.status_code == 307 and "location" not in response.headers


# --- the key: an httpx.Auth that only the API origin sees --------------------------------------


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        (f"{API}/v1/x", True),
        ("https://API.example.test:443/v1/x", True),  # the same origin, spelled otherwise
        ("https://api.example.test:8443/v1/x", False),
        ("http://api.example.test/v1/x", False),
        ("https://blobs.example.net/r", False),
    ],
)
def test_the_key_goes_only_to_the_api_origin(url: str, sent: bool) -> None:
    auth = ApiKeyAuth(KEY, API)
    request = httpx.Request("GET", url, headers={"Authorization": "Bearer stale"})
    flow = auth.sync_auth_flow(request)
    out = next(flow)
    assert out.extensions[AUTHENTICATED] is True
    assert (out.headers.get("Authorization") == f"Bearer {KEY}") is sent
    if not sent:
        assert "Authorization" not in out.headers


def test_an_unauthenticated_request_is_left_alone() -> None:
    auth = ApiKeyAuth(KEY, API)
    request = httpx.Request("PUT", f"{API}/upload", headers={"Authorization": "signed"})
    auth.scope(request)
    assert request.headers["Authorization"] == "signed"


def test_the_key_is_in_no_repr() -> None:
    auth = ApiKeyAuth(KEY, API)
    client = ApiClient(side="dest", base_url=API, api_key=KEY)
    assert KEY not in repr(auth) + str(auth) + repr(client) + str(vars(client).get("_auth"))


async def test_an_http_to_https_upgrade_does_not_carry_the_key() -> None:
    # httpx keeps Authorization on an http->https upgrade of the same host; the API origin is http.
    api = (
        FakeApi()
        .on("GET", "/v1/a", httpx.Response(302, headers={"location": "https://127.0.0.1/v1/b"}))
        .on("GET", "/v1/b", httpx.Response(200, json={"ok": True}))
    )
    async with make_client(api, base_url="http://127.0.0.1:9") as client:
        assert await client.get_json("/v1/a") == {"ok": True}
    assert "authorization" in api.calls[0].headers
    assert "authorization" not in api.calls[1].headers


async def test_a_302_for_a_put_keeps_method_and_body_on_the_api_origin() -> None:
    api = (
        FakeApi()
        .on("PUT", "/v1/old", httpx.Response(302, headers={"location": "/v1/new"}))
        .on("PUT", "/v1/new", lambda r: httpx.Response(200, content=r.content))
    )
    async with make_client(api) as client:
        assert await client.put_json("/v1/old", {"k": "v"}) == {"k": "v"}
    assert [c.method for c in api.calls] == ["PUT", "PUT"]
    assert client.stats.requests == 2


async def test_a_303_drops_the_body_and_its_content_type() -> None:
    api = (
        FakeApi()
        .on("POST", "/v1/x", httpx.Response(303, headers={"location": "/v1/done"}))
        .on("GET", "/v1/done", httpx.Response(200, json={"done": True}))
    )
    async with make_client(api) as client:
        assert await client.post_json("/v1/x", {"secret": "v"}) == {"done": True}
    assert api.calls[1].content == b"" and "content-type" not in api.calls[1].headers
    assert client.stats.bytes_sent == len(b'{"secret":"v"}')


@contextlib.contextmanager
def _server(answer: dict[str, tuple[int, str]]) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """A loopback server answering path -> (status, Location); records (path, Authorization), and
    fails a request that came with a body (a GET hop must not go chunked)."""
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            framed = self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length")
            seen.append((self.path, self.headers.get("Authorization") if not framed else "a body"))
            status, location = answer.get(self.path, (200, ""))
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


async def test_over_the_wire_the_key_leaves_and_comes_back_with_the_api_origin() -> None:
    # API -> another origin -> back to the API: the other server never sees the key, the API does.
    routes: dict[str, tuple[int, str]] = {}
    with _server(routes) as (api_url, api_seen), _server(routes) as (other_url, other_seen):
        routes.update({"/v1/a": (302, f"{other_url}/hop"), "/hop": (302, f"{api_url}/v1/b")})
        async with ApiClient(side="source", base_url=api_url, api_key=KEY) as client:
            assert await client.get_json("/v1/a") == {}
            assert client.stats.requests == 3
    assert api_seen == [("/v1/a", f"Bearer {KEY}"), ("/v1/b", f"Bearer {KEY}")]
    assert other_seen == [("/hop", None)]


async def test_a_refused_redirect_names_the_url_that_redirected() -> None:
    api = FakeApi().on("POST", "/btql", httpx.Response(307, headers={"location": "https://evil.test/c"}))
    async with make_client(api) as client:
        with pytest.raises(RedirectRefused) as info:
            await client.post_json("/btql", {"q": 1})
    assert (info.value.url, info.value.status) == (f"{API}/btql", 307)
    assert isinstance(info.value, ApiError) and client.stats.requests == 1


async def test_open_blob_follows_only_checked_hops_without_the_key() -> None:
    api = (
        FakeApi()
        .on("GET", "/a", httpx.Response(302, headers={"location": "https://blobs.test/b"}))
        .on("GET", "/b", httpx.Response(200, content=b"blob-bytes"))
    )
    checked: list[str] = []

    async def check(url: str) -> None:
        checked.append(url)

    async with make_client(api) as client:
        with pytest.raises(ApiError, match=r"blob download redirected \(302\); not followed"):
            await client.open_blob(f"{API}/a")
        stream, _ = await client.open_blob(f"{API}/a", check=check)
        body = b"".join([chunk async for chunk in stream.aiter_bytes()])
        await stream.aclose()
        assert client.limiter.in_flight == 0
    assert body == b"blob-bytes" and checked == ["https://blobs.test/b"]
    assert all("authorization" not in call.headers for call in api.calls)
