"""List pagination, redirects and the adaptive in-flight cap."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from braintrust_migrate.client import PaginationError
from braintrust_migrate.client.limiter import AdaptiveLimiter
from tests.unit.fakes import FakeApi, make_client


def paged(items: list[dict]) -> object:
    def answer(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        after = request.url.params.get("starting_after")
        start = 0 if after is None else next(i for i, it in enumerate(items) if it["id"] == after) + 1
        return httpx.Response(200, json={"objects": items[start : start + limit]})

    return answer


async def test_pages_until_short_page_and_passes_filters() -> None:
    items = [{"id": f"id-{i:03d}"} for i in range(7)]
    api = FakeApi().on("GET", "/v1/prompt", paged(items))
    async with make_client(api) as client:
        got = await client.list_all("/v1/prompt", {"project_id": "p1"}, page_size=3)
    assert got == items
    assert len(api.calls) == 3
    assert all(call.url.params["project_id"] == "p1" for call in api.calls)
    assert [call.url.params.get("starting_after") for call in api.calls] == [None, "id-002", "id-005"]


async def test_exact_multiple_ends_on_empty_page() -> None:
    items = [{"id": f"id-{i}"} for i in range(4)]
    api = FakeApi().on("GET", "/v1/role", paged(items))
    async with make_client(api) as client:
        assert await client.list_all("/v1/role", page_size=2) == items
    assert len(api.calls) == 3


async def test_empty_list() -> None:
    api = FakeApi().on("GET", "/v1/role", httpx.Response(200, json={"objects": []}))
    async with make_client(api) as client:
        assert await client.list_all("/v1/role") == []


async def test_cursor_that_does_not_advance_raises() -> None:
    api = FakeApi().on("GET", "/v1/role", httpx.Response(200, json={"objects": [{"id": "a"}, {"id": "b"}]}))
    async with make_client(api) as client:
        with pytest.raises(PaginationError, match="did not advance"):
            await client.list_all("/v1/role", page_size=2)


async def test_bare_array_from_list_org() -> None:
    api = FakeApi().on("GET", "/v1/acl/list_org", httpx.Response(200, json=[{"id": "x"}]))
    async with make_client(api) as client:
        assert await client.list_all("/v1/acl/list_org", page_size=10) == [{"id": "x"}]


async def test_cursorless_list_is_one_request_without_limit() -> None:
    api = FakeApi().on("GET", "/environment", httpx.Response(200, json={"objects": [{"id": "e"}] * 3}))
    async with make_client(api) as client:
        assert len(await client.list_all("/environment", page_size=2, cursor=False)) == 3
    assert "limit" not in api.calls[0].url.params


async def test_unexpected_list_shape_is_an_error() -> None:
    api = FakeApi().on("GET", "/v1/role", httpx.Response(200, json={"items": []}))
    async with make_client(api) as client:
        with pytest.raises(Exception, match="unexpected list shape"):
            await client.list_all("/v1/role")


async def test_redirect_keeps_auth_only_on_own_origin() -> None:
    api = (
        FakeApi()
        .on("GET", "/v1/a", httpx.Response(307, headers={"location": "/v1/b"}))
        .on("GET", "/v1/b", httpx.Response(303, headers={"location": "https://blobs.example.net/obj?sig=1"}))
        .on("GET", "/obj", httpx.Response(200, json={"big": True}))
    )
    async with make_client(api) as client:
        assert await client.get_json("/v1/a") == {"big": True}
    assert [c.url.host for c in api.calls] == ["api.example.test", "api.example.test", "blobs.example.net"]
    assert "authorization" in api.calls[1].headers
    assert "authorization" not in api.calls[2].headers


async def test_303_after_post_becomes_get() -> None:
    api = (
        FakeApi()
        .on("POST", "/btql", httpx.Response(303, headers={"location": "https://api.example.test/result"}))
        .on("GET", "/result", httpx.Response(200, json={"data": []}))
    )
    async with make_client(api) as client:
        assert await client.post_json("/btql", {"query": "q"}) == {"data": []}
    assert api.calls[1].method == "GET"
    assert api.calls[1].content == b""


async def test_in_flight_requests_never_exceed_the_cap() -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={})

    class AsyncFake(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await slow(request)

    from braintrust_migrate.client import ApiClient

    client = ApiClient(
        side="source",
        base_url="https://x.test",
        api_key="k" * 10,
        max_concurrent_requests=3,
        transport=AsyncFake(),
    )
    async with client:
        await asyncio.gather(*(client.get_json("/v1/x") for _ in range(20)))
    assert peak == 3


async def test_aimd_halves_once_per_burst_and_recovers() -> None:
    limiter = AdaptiveLimiter(16)
    async with limiter.slot() as a, limiter.slot() as b:
        limiter.on_throttled(a)
        limiter.on_throttled(b)  # same burst: not cut again
    assert limiter.limit == 8
    async with limiter.slot() as c:
        limiter.on_throttled(c)
    assert limiter.limit == 4
    for _ in range(200):
        limiter.on_success()
    assert limiter.limit == 16
    for _ in range(20):
        async with limiter.slot() as p:
            limiter.on_throttled(p)
    assert limiter.limit == 1  # never below one


async def test_429_shrinks_the_clients_cap() -> None:
    api = FakeApi().on(
        "GET", "/v1/x", httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json={})
    )
    async with make_client(api, max_concurrent=8) as client:
        await client.get_json("/v1/x")
        assert client.limiter.limit == 4
