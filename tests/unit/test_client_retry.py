"""Retry decisions and backoff, with a fake clock: nothing really sleeps."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from braintrust_migrate.client import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NetworkError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
)
from braintrust_migrate.client.retry import parse_retry_after
from tests.unit.fakes import FakeApi, FakeSleep, make_client

OK = httpx.Response(200, json={"ok": True})


def test_parse_retry_after_seconds_date_and_garbage() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=12), usegmt=True), now) == 12.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=12), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("100000") == 300.0


def test_full_jitter_bounds_and_cap() -> None:
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=8.0, rng=random.Random(1))
    for attempt in range(10):
        ceiling = min(8.0, 2.0**attempt)
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # really spread across the range
    assert policy.delay(0, retry_after=20.0) == 20.0  # Retry-After is a floor, even above the cap


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried(status: int) -> None:
    api = FakeApi().on("GET", "/v1/x", httpx.Response(status, text="busy"), OK)
    sleep = FakeSleep()
    async with make_client(api, sleep=sleep) as client:
        assert await client.get_json("/v1/x") == {"ok": True}
        assert client.stats.retries == 1
        assert client.stats.requests == 2
    assert len(sleep.delays) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, PayloadTooLargeError),
    ],
)
async def test_client_errors_are_never_retried(status: int, error: type) -> None:
    api = FakeApi().on("POST", "/v1/x", httpx.Response(status, json={"error": "nope"}))
    sleep = FakeSleep()
    async with make_client(api, sleep=sleep) as client:
        with pytest.raises(error) as info:
            await client.post_json("/v1/x", {"a": 1})
    assert len(api.calls) == 1
    assert sleep.delays == []
    assert info.value.status == status
    assert info.value.method == "POST"
    assert info.value.path == "/v1/x"


async def test_retry_after_is_honoured() -> None:
    throttled = httpx.Response(429, headers={"Retry-After": "17"}, text="slow down")
    api = FakeApi().on("GET", "/v1/x", throttled, OK)
    sleep = FakeSleep()
    async with make_client(api, sleep=sleep) as client:
        await client.get_json("/v1/x")
        assert client.stats.rate_limited == 1
    assert sleep.delays == [17.0]


async def test_retry_after_http_date_is_honoured() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    api = FakeApi().on("GET", "/v1/x", httpx.Response(429, headers={"Retry-After": when}), OK)
    sleep = FakeSleep()
    async with make_client(api, sleep=sleep) as client:
        await client.get_json("/v1/x")
    assert 25 <= sleep.delays[0] <= 30


async def test_gives_up_after_the_configured_attempts() -> None:
    api = FakeApi().on("GET", "/v1/x", httpx.Response(503, text="down"))
    sleep = FakeSleep()
    async with make_client(api, attempts=3, sleep=sleep) as client:
        with pytest.raises(ServerError) as info:
            await client.get_json("/v1/x")
        assert client.stats.requests == 4
        assert client.stats.retries == 3
    assert info.value.status == 503
    assert len(sleep.delays) == 3
    # exponential ceilings 1, 2, 4 with full jitter
    assert all(d <= c for d, c in zip(sleep.delays, [1, 2, 4], strict=True))


async def test_persistent_429_raises_rate_limited_with_advice() -> None:
    api = FakeApi().on("GET", "/v1/x", httpx.Response(429, headers={"Retry-After": "1"}))
    async with make_client(api, attempts=2) as client:
        with pytest.raises(RateLimitedError, match="MIGRATION_MAX_CONCURRENT_REQUESTS"):
            await client.get_json("/v1/x")


async def test_zero_attempts_disables_retries() -> None:
    api = FakeApi().on("GET", "/v1/x", httpx.Response(500), OK)
    sleep = FakeSleep()
    async with make_client(api, attempts=0, sleep=sleep) as client:
        with pytest.raises(ServerError):
            await client.get_json("/v1/x")
    assert len(api.calls) == 1
    assert sleep.delays == []


async def test_network_errors_are_retried_then_reported() -> None:
    refused = httpx.ConnectError("Connection refused")
    api = FakeApi().on("GET", "/v1/x", refused, httpx.ReadTimeout("slow"), OK)
    async with make_client(api) as client:
        assert await client.get_json("/v1/x") == {"ok": True}
        assert client.stats.retries == 2
    api = FakeApi().on("GET", "/v1/x", refused)
    async with make_client(api, attempts=1) as client:
        with pytest.raises(NetworkError) as info:
            await client.get_json("/v1/x")
    assert info.value.status is None
    assert "could not reach the source API at https://api.example.test/v1/x" in info.value.message
    assert "BT_SOURCE_URL" in info.value.message


async def test_dropped_connection_is_retried() -> None:
    api = FakeApi().on("GET", "/v1/x", httpx.RemoteProtocolError("peer closed"), OK)
    async with make_client(api) as client:
        assert await client.get_json("/v1/x") == {"ok": True}


async def test_byte_counters() -> None:
    api = FakeApi().on("POST", "/v1/x", httpx.Response(200, content=b'{"a":1}'))
    async with make_client(api) as client:
        await client.post_json("/v1/x", {"hello": "world"})
        assert client.stats.bytes_sent == len(b'{"hello":"world"}')
        assert client.stats.bytes_received == 7
