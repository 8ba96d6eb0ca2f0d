"""Fuzz: whatever an API answers (status, headers, encoding, body), the client either returns
what its callers rely on or raises one of its own ApiErrors: never KeyError, TypeError,
AttributeError, a JSON decode error, or an httpx exception."""

from __future__ import annotations

import asyncio
import gzip
import random
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from braintrust_migrate.client import ApiClient, ApiError, RetryPolicy
from tests.unit.fakes import FakeSleep


class Chunks(httpx.AsyncByteStream):
    """A body that arrives in pieces, as from a socket (not pre-read like `content=`)."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, max(1, size)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), self.size):
            yield self.data[start : start + self.size]


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4)
)
ids = st.one_of(st.text(max_size=6), st.integers(0, 99), st.none(), st.lists(st.integers(0, 9), max_size=2))
list_items = st.one_of(
    json_values, st.fixed_dictionaries({"id": ids}), st.fixed_dictionaries({"id": st.text()})
)
payloads = st.one_of(
    json_values,
    st.fixed_dictionaries({"objects": st.lists(list_items, max_size=5)}),
    st.lists(list_items, max_size=5),
    st.fixed_dictionaries({"objects": json_values}),
    st.fixed_dictionaries({"data": json_values}),
)
bodies = st.one_of(
    payloads.map(orjson.dumps),
    st.binary(max_size=64),
    st.sampled_from(
        [b"", b'{"objects": [{"id": 1e999}]}', b'{"n": 123456789012345678901234567890}', b"\xff"]
    ),
)
locations = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "/v1/next",
            "https://api.example.test:99999/x",
            "https://api.example.test:port/x",
            "https://other.example.net/x",
            "http://api.example.test/x",
            "//evil.example.net/a",
            "ftp://x.test/y",
            "https://[::1/x",
            "",
        ]
    ),
)


@st.composite
def answers(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "status": draw(
            st.sampled_from([200, 201, 204, 300, 301, 302, 303, 304, 307, 308, 400, 404, 413, 429, 500])
        ),
        "body": draw(bodies),
        "content_type": draw(
            st.sampled_from([None, "application/json", "text/html", "text/plain; charset=x"])
        ),
        "encoding": draw(st.sampled_from([None, "gzip", "deflate", "br", "identity", "gzip, gzip"])),
        "encode": draw(st.booleans()),  # compress as labelled, or send the body raw under that label
        "location": draw(locations),
        "chunk": draw(st.integers(1, 32)),
    }


def _response(answer: dict[str, Any]) -> httpx.Response:
    body = answer["body"]
    if answer["encode"] and answer["encoding"] == "gzip":
        body = gzip.compress(body)
    elif answer["encode"] and answer["encoding"] == "deflate":
        body = zlib.compress(body)
    headers: dict[str, str | bytes] = {}  # on the wire a header is bytes, in any encoding
    if answer["content_type"]:
        headers["content-type"] = answer["content_type"]
    if answer["encoding"]:
        headers["content-encoding"] = answer["encoding"]
    if answer["location"] is not None:
        headers["location"] = answer["location"].encode()
    return httpx.Response(answer["status"], headers=headers, stream=Chunks(body, answer["chunk"]))


OPERATIONS = ["get_dict", "get_any", "post", "list", "list_cursorless", "put", "delete"]


async def _exercise(operation: str, script: list[dict[str, Any]], cap: int) -> None:
    queue = list(script)

    def handler(request: httpx.Request) -> httpx.Response:
        return _response(queue.pop(0) if len(queue) > 1 else queue[0])

    client = ApiClient(
        side="source",
        base_url="https://api.example.test",
        api_key="sk-fuzz-secret-0001",
        retry=RetryPolicy(attempts=1, base_delay=0, max_delay=0, rng=random.Random(1)),
        transport=httpx.MockTransport(handler),
        sleep=FakeSleep(),
        page_size=2,
        max_response_bytes=cap,
    )
    async with client:
        try:
            if operation == "get_dict":
                assert isinstance(await client.get_json("/v1/x", expect=dict), dict)
            elif operation == "get_any":
                await client.get_json("/v1/x")
            elif operation == "post":
                assert isinstance(await client.post_json("/btql", {"query": "q"}, expect=dict), dict)
            elif operation in ("list", "list_cursorless"):
                items = await client.list_all("/v1/prompt", cursor=operation == "list")
                assert all(isinstance(item, dict) and isinstance(item["id"], str) for item in items)
            elif operation == "put":
                await client.put_json("/v1/x", {"a": 1}, expect=dict)
            else:
                await client.delete_json("/v1/x", {"a": 1})
        except ApiError as error:
            # A typed error carries a message and a serialisable form, and never the key.
            assert error.message
            assert "sk-fuzz-secret-0001" not in orjson.dumps(error.to_dict()).decode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operation=st.sampled_from(OPERATIONS),
    script=st.lists(answers(), min_size=1, max_size=4),
    cap=st.sampled_from([1_048_576, 16]),
)
def test_the_client_raises_only_its_own_errors(
    operation: str, script: list[dict[str, Any]], cap: int
) -> None:
    asyncio.run(_exercise(operation, script, cap))
