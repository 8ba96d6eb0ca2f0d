"""The client against hostile answers: decompression bombs, redirects that would leak a body or
downgrade to http, malformed bodies, and plain-http URLs (security issue cases 3, 8, 9, 11)."""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import subprocess
import sys
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest

from braintrust_migrate.client import (
    ApiClient,
    ApiError,
    MalformedResponse,
    RedirectRefused,
    ResponseTooLarge,
)
from braintrust_migrate.client.body import BodyTooLarge, read_capped
from braintrust_migrate.config import ConfigError, Settings, load_settings
from braintrust_migrate.engine.inventory import load_inventory
from braintrust_migrate.engine.resources import BY_NAME
from braintrust_migrate.source.live import LiveSource
from braintrust_migrate.source.reader import BtqlReader
from tests.unit.fakes import FakeApi, make_client

MiB = 1 << 20
BOMB_DECODED = 64 * MiB
SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))


def _gzip_zeros(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(MiB)
    return b"".join([packer.compress(zeros) for _ in range(size // MiB)] + [packer.flush()])


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hangs up mid-bomb on purpose


@pytest.fixture(scope="module")
def bomb_server() -> Iterator[str]:
    """A real loopback HTTP server: /v1/organization answers 305 KB-class gzip that decodes to 64 MiB."""
    bomb = _gzip_zeros(BOMB_DECODED)
    small = gzip.compress(orjson.dumps({"objects": [{"id": "o1", "name": "org"}]}))
    routes = {
        "/v1": (b"{}", None),
        "/v1/organization": (bomb, "gzip"),
        "/small": (small, "gzip"),
        "/raw-deflate": (zlib.compress(b'{"ok": 1}')[2:-4], "deflate"),
        "/zlib-deflate": (zlib.compress(b'{"ok": 2}'), "deflate"),
        "/corrupt": (small[:12] + b"garbage-garbage-garbage" + small[12:], "gzip"),
        "/brotli": (b"\x0b\x02\x80{}\x03", "br"),
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body, encoding = routes.get(self.path.split("?")[0], (b'{"error": "no route"}', None))
            self.send_response(200 if self.path.split("?")[0] in routes else 404)
            self.send_header("Content-Type", "application/json")
            if encoding:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def real_client(base_url: str, **kw: object) -> ApiClient:
    return ApiClient(side="source", base_url=base_url, api_key="sk-hardening-test-key-01", **kw)  # type: ignore[arg-type]


# --- case 3: decompression bomb ---------------------------------------------------------------


async def test_gzip_bomb_stops_at_the_cap_with_bounded_memory(bomb_server: str) -> None:
    client = real_client(bomb_server, max_response_bytes=MiB)
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge) as info:
            await client.list_all("/v1/organization")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await client.aclose()
    message = info.value.message
    assert f"{bomb_server}/v1/organization" in message
    assert "MIGRATION_MAX_RESPONSE_BYTES=1048576" in message and "--max-response-bytes" in message
    # The old client decoded the whole 64 MiB (and joined it): the cap plus one step is all we hold.
    assert peak < 8 * MiB, peak


async def test_gzip_and_deflate_within_the_cap_still_decode(bomb_server: str) -> None:
    async with real_client(bomb_server) as client:
        assert await client.list_all("/small") == [{"id": "o1", "name": "org"}]
        assert await client.get_json("/raw-deflate") == {"ok": 1}
        assert await client.get_json("/zlib-deflate") == {"ok": 2}


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), self.size):
            yield self.data[start : start + self.size]


_DATA = random.Random(3).randbytes(20_000) + bytes(3 * MiB)  # steps of 1 MiB: several of them
_RAW_DEFLATE = zlib.compress(_DATA)[2:-4]  # raw deflate, without the zlib header, as some servers send


@pytest.mark.parametrize(
    ("encoding", "packed", "chunk"),
    [
        ("gzip", gzip.compress(_DATA), 1),
        ("gzip", gzip.compress(_DATA), 65_536),
        ("deflate", zlib.compress(_DATA), 7),
        ("deflate", _RAW_DEFLATE, 1),
        ("deflate", _RAW_DEFLATE, 65_536),
        (None, _DATA, 65_536),
    ],
)
async def test_decoding_in_steps_gives_back_the_exact_bytes(
    encoding: str | None, packed: bytes, chunk: int
) -> None:
    headers = {"content-encoding": encoding} if encoding else {}
    response = httpx.Response(200, headers=headers, stream=_Chunks(packed, chunk))
    assert await read_capped(response, len(_DATA)) == _DATA
    response = httpx.Response(200, headers=headers, stream=_Chunks(packed, chunk))
    with pytest.raises(BodyTooLarge):
        await read_capped(response, len(_DATA) - 1)


@pytest.mark.parametrize(("path", "reason"), [("/corrupt", "corrupt"), ("/brotli", "Content-Encoding")])
async def test_undecodable_bodies_are_malformed_responses(bomb_server: str, path: str, reason: str) -> None:
    async with real_client(bomb_server) as client:
        with pytest.raises(MalformedResponse, match=reason):
            await client.get_json(path)


# A child's peak RSS counts the image it was forked from, so a small helper process forks the
# CLI and reports (on its last line) the CLI's own peak, not pytest's.
_PEAK_RSS = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stderr=subprocess.STDOUT)\n"
    "_, _, usage = os.wait4(p.pid, 0)\n"
    "print(f'peak-rss-kib={usage.ru_maxrss}')\n"
)


async def test_a_compressed_blob_decodes_in_bounded_steps(bomb_server: str) -> None:
    async with real_client(bomb_server) as client:
        stream, _ = await client.open_blob(f"{bomb_server}/v1/organization")
        sizes = []
        try:
            async for chunk in stream.aiter_bytes():
                sizes.append(len(chunk))
                if len(sizes) == 8:
                    break
        finally:
            await stream.aclose()
    # httpx's own decoder turned each 16 KiB read into about 16 MiB at once.
    assert sizes and max(sizes) <= MiB, sizes


def _validate_rss(base_url: str, **settings: str) -> tuple[str, int]:
    """Run `validate`: (its stdout and stderr, its peak RSS in KiB)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update(
        BT_SOURCE_API_KEY="sk-src-hardening-0001",
        BT_DEST_API_KEY="sk-dst-hardening-0002",
        BT_SOURCE_URL=base_url,
        BT_DEST_URL=base_url,
        **settings,
    )
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, SCRIPT, "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output, _, peak = out.stdout.rstrip().rpartition("peak-rss-kib=")
    return output + out.stderr, int(peak)


def test_validate_against_a_bomb_fails_the_check_without_growing(bomb_server: str) -> None:
    output, rss_kib = _validate_rss(bomb_server, MIGRATION_MAX_RESPONSE_BYTES="1048576")
    assert "Traceback" not in output
    assert "MIGRATION_MAX_RESPONSE_BYTES" in output
    # The old client decoded both sides' 64 MiB bombs whole (measured: 440 MiB peak RSS).
    assert rss_kib < 160 * 1024, rss_kib


# --- case 8: redirects ------------------------------------------------------------------------

API = "https://api.example.test"


async def test_cross_origin_307_for_a_post_is_refused_and_the_body_not_sent() -> None:
    api = (
        FakeApi()
        .on("POST", "/btql", httpx.Response(307, headers={"location": "https://evil.example.net/collect"}))
        .on("POST", "/collect", httpx.Response(200, json={"data": []}))
    )
    async with make_client(api) as client:
        with pytest.raises(RedirectRefused, match="another origin") as info:
            await client.post_json("/btql", {"query": "select: *", "secret": "s3cr3t-value"})
    assert [c.url.host for c in api.calls] == ["api.example.test"]
    assert info.value.status == 307
    assert "BT_SOURCE_URL" in info.value.message


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_cross_origin_308_for_writes_is_refused(method: str) -> None:
    api = FakeApi().on(method, "/v1/x", httpx.Response(308, headers={"location": "https://other.test/v1/x"}))
    async with make_client(api) as client:
        with pytest.raises(RedirectRefused):
            await client.request(method, "/v1/x", json={"a": 1})
    assert len(api.calls) == 1


async def test_same_origin_307_keeps_method_and_body() -> None:
    api = (
        FakeApi()
        .on("POST", "/v1/old", httpx.Response(307, headers={"location": "/v1/new"}))
        .on(
            "POST",
            "/v1/new",
            lambda r: httpx.Response(200, content=r.content, headers={"content-type": "json"}),
        )
    )
    async with make_client(api) as client:
        assert await client.post_json("/v1/old", {"k": "v"}) == {"k": "v"}
    assert "authorization" in api.calls[1].headers


async def test_303_to_another_origin_becomes_a_get_without_body_or_auth() -> None:
    api = (
        FakeApi()
        .on("POST", "/v1/x", httpx.Response(303, headers={"location": "https://blobs.example.net/r"}))
        .on("GET", "/r", httpx.Response(200, json={"done": True}))
    )
    async with make_client(api) as client:
        assert await client.post_json("/v1/x", {"secret": "v"}) == {"done": True}
    assert api.calls[1].method == "GET" and api.calls[1].content == b""
    assert "authorization" not in api.calls[1].headers


async def test_https_to_http_downgrade_is_refused_even_for_get_on_the_same_host() -> None:
    api = (
        FakeApi()
        .on("GET", "/v1/a", httpx.Response(302, headers={"location": "http://api.example.test/v1/b"}))
        .on("GET", "/v1/b", httpx.Response(200, json={}))
    )
    async with make_client(api) as client:
        with pytest.raises(RedirectRefused, match="downgrades https to http"):
            await client.get_json("/v1/a")
    assert len(api.calls) == 1


async def test_http_redirect_to_a_non_loopback_host_needs_allow_insecure_http() -> None:
    def fake() -> FakeApi:
        return (
            FakeApi()
            .on("GET", "/v1/a", httpx.Response(302, headers={"location": "http://plain.example.org/v1/b"}))
            .on("GET", "/v1/b", httpx.Response(200, json={"ok": True}))
        )

    async with make_client(fake(), base_url="http://127.0.0.1:9") as client:
        with pytest.raises(RedirectRefused, match="BT_ALLOW_INSECURE_HTTP"):
            await client.get_json("/v1/a")
    async with make_client(fake(), base_url="http://127.0.0.1:9", allow_insecure_http=True) as client:
        assert await client.get_json("/v1/a") == {"ok": True}


@pytest.mark.parametrize(
    "location", ["https://api.example.test:99999/v1/b", "https://api.example.test:port/x", "ftp://x.test/y"]
)
async def test_an_unusable_location_is_an_api_error_naming_it(location: str) -> None:
    api = FakeApi().on("GET", "/v1/a", httpx.Response(301, headers={"location": location}))
    async with make_client(api) as client:
        with pytest.raises(RedirectRefused) as info:
            await client.get_json("/v1/a")
    assert location in info.value.message


async def test_a_redirect_loop_is_an_error_not_a_success() -> None:
    api = FakeApi().on("GET", "/v1/a", httpx.Response(302, headers={"location": "/v1/a"}))
    async with make_client(api) as client:
        with pytest.raises(RedirectRefused, match="redirects in a row"):
            await client.get_json("/v1/a")


# --- case 9: malformed answers ----------------------------------------------------------------


async def test_invalid_json_is_a_malformed_response_naming_the_url() -> None:
    api = FakeApi().on(
        "POST",
        "/btql",
        httpx.Response(200, content=b'{"data": [', headers={"content-type": "application/json"}),
    )
    async with make_client(api) as client:
        with pytest.raises(MalformedResponse, match="invalid JSON") as info:
            await client.post_json("/btql", {"query": "q"})
    assert f"{API}/btql" in info.value.message


async def test_invalid_json_in_a_btql_page_fails_that_stream_with_a_reason() -> None:
    api = FakeApi().on(
        "POST",
        "/btql",
        httpx.Response(200, content=b'{"data": [{"id": ', headers={"content-type": "application/json"}),
    )
    async with make_client(api) as client:
        reader = BtqlReader(client, "experiment", "e1", page_size=10)
        with pytest.raises(MalformedResponse, match="invalid JSON"):
            [page async for page in reader.pages()]


async def test_non_object_list_items_are_skipped_and_counted() -> None:
    api = FakeApi().on(
        "GET",
        "/v1/prompt",
        httpx.Response(
            200, json={"objects": [{"id": "p1"}, "oops", 7, None, {"name": "no id"}, {"id": "p2"}]}
        ),
    )
    async with make_client(api) as client:
        assert await client.list_all("/v1/prompt", page_size=100) == [{"id": "p1"}, {"id": "p2"}]
        assert client.stats.skipped_items == 4


async def test_inventory_survives_a_non_object_item() -> None:
    api = FakeApi().on("GET", "/v1/prompt", httpx.Response(200, json={"objects": [["not", "an", "object"]]}))
    async with make_client(api) as client:
        inventory = await load_inventory(LiveSource(client), "org", [BY_NAME["prompts"]])
    assert list(inventory.of("prompt")) == []


async def test_a_full_page_of_skipped_items_is_a_pagination_error_not_a_crash() -> None:
    api = FakeApi().on("GET", "/v1/role", httpx.Response(200, json={"objects": [1, 2]}))
    async with make_client(api) as client:
        with pytest.raises(ApiError, match="did not advance"):
            await client.list_all("/v1/role", page_size=2)


@pytest.mark.parametrize(
    ("response", "got"),
    [
        (httpx.Response(200, json=[1, 2]), "a list"),
        (httpx.Response(200, content=b""), "an empty body"),
        (httpx.Response(200, text="<html>", headers={"content-type": "text/html"}), "'text/html' content"),
    ],
)
async def test_expect_dict_refuses_other_shapes(response: httpx.Response, got: str) -> None:
    api = FakeApi().on("GET", "/v1/x", response)
    async with make_client(api) as client:
        with pytest.raises(MalformedResponse, match=f"expected a JSON object, got {got}"):
            await client.get_json("/v1/x", expect=dict)


# --- case 11: plain http ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "field"), [("BT_SOURCE_URL", "bt_source_url"), ("BT_DEST_URL", "bt_dest_url")]
)
def test_plain_http_to_a_remote_host_is_a_config_error(var: str, field: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{var}=http://api.example.com is plain http") as info:
        load_settings({field: "http://api.example.com"}, env_file=None)
    assert len(str(info.value).splitlines()) == 1
    allowed = load_settings({field: "http://api.example.com", "bt_allow_insecure_http": True}, env_file=None)
    assert allowed.url("source" if var == "BT_SOURCE_URL" else "dest") == "http://api.example.com"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.8.9.10", "http://localhost:3000", "http://[::1]:8080"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert load_settings({"bt_source_url": url, "bt_dest_url": url}, env_file=None).bt_source_url == url


def test_a_url_with_a_bad_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bad port"):
        load_settings({"bt_source_url": "https://api.example.com:99999"}, env_file=None)


def test_cli_refuses_plain_http_in_one_line_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update(BT_SOURCE_API_KEY="sk-a-0001", BT_DEST_API_KEY="sk-b-0002", BT_DEST_URL="http://10.1.2.3:8000")
    out = subprocess.run(
        [SCRIPT, "validate"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "BT_DEST_URL=http://10.1.2.3:8000" in out.stderr and "--allow-insecure-http" in out.stderr
    assert "Traceback" not in out.stderr


def test_validate_help_lists_the_new_settings(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run(
        [SCRIPT, "validate", "--help"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )
    assert "--allow-insecure-http" in out.stdout and "--max-response-bytes" in out.stdout
