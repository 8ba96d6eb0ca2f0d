"""A JSON body exists only while its request is being sent. Requests queued behind the client's
cap and requests backing off after a 503 or a timeout held their encoded bodies (an insert batch,
~1.5 MB), and httpx's response and its stream point at each other, a cycle that kept each request
and its body until the cyclic collector ran. The oracle is Python's own allocation tracer."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from braintrust_migrate.client import ApiClient
from braintrust_migrate.client.retry import RetryPolicy
from braintrust_migrate.engine.events.writer import Encoded, Inserter

MB = 1 << 20
ROWS = 200
VALUE = "x" * 5000  # one string shared by every row: the rows are cheap, their encoding is ~1 MB a batch
CAP = 2
BATCHES = 16


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def batch(n: int) -> list[Encoded]:
    return [Encoded({"id": f"{n}-{i}", "input": VALUE}, len(VALUE), None, None) for i in range(ROWS)]


def client(handler: httpx.AsyncBaseTransport, cap: int, sleep=asyncio.sleep) -> ApiClient:  # type: ignore[no-untyped-def]
    return ApiClient(
        side="dest", base_url="https://api.example.test", api_key="sk-test", max_concurrent_requests=cap,
        transport=handler, retry=RetryPolicy(attempts=3, base_delay=0.01), sleep=sleep,
    )  # fmt: skip


async def warmed(inserter: Inserter) -> int:
    """The traced memory after one small insert: what a client allocates once is not a body."""
    await inserter.send(batch(-1)[:1])
    return tracemalloc.get_traced_memory()[0]


def allocated_since(base: int) -> int:
    return tracemalloc.get_traced_memory()[0] - base


async def test_batches_queued_behind_the_cap_hold_no_encoded_body(traced: None) -> None:
    release = asyncio.Event()
    in_flight = 0
    received: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight
        received.append(len(await request.aread()))
        if received[-1] > len(VALUE) * 2:  # not the warm-up's single row
            in_flight += 1
            await release.wait()
        return httpx.Response(200, json={"row_ids": []})

    batches = [batch(n) for n in range(BATCHES)]
    async with client(httpx.MockTransport(handler), CAP) as api:
        inserter = Inserter(api, "dataset", "d1", max_rows=ROWS, max_bytes=64 * MB)
        base = await warmed(inserter)
        sends = [asyncio.create_task(inserter.send(b)) for b in batches]
        while in_flight < CAP:
            await asyncio.sleep(0.001)
        for _ in range(20):  # every other send runs up to its wait for a slot
            await asyncio.sleep(0)
        held = allocated_since(base)
        release.set()
        results = await asyncio.gather(*sends)
    body = received[1]
    assert body > ROWS * len(VALUE)  # each batch is sent whole
    assert sorted(len(r.written) for r in results) == [ROWS] * BATCHES
    # The bodies of the two requests on the wire, and none of the fourteen waiting for a slot.
    # (orjson's buffer is up to twice the body, as traced; the pages it never touched are not resident.)
    assert held < (CAP + 1) * 2 * body, f"{held / MB:.1f} MiB held with {CAP} of {BATCHES} requests sent"


async def test_a_written_batch_leaves_nothing_for_the_cyclic_collector(traced: None) -> None:
    """httpx's response and its stream point at each other; the cycle held each request and its
    body until the collector ran, which while rows stream is rarely."""

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(200, json={"row_ids": []})

    gc.disable()
    try:
        async with client(httpx.MockTransport(handler), CAP) as api:
            inserter = Inserter(api, "dataset", "d1", max_rows=ROWS, max_bytes=64 * MB)
            base = await warmed(inserter)
            for n in range(8):
                assert len((await inserter.send(batch(n))).written) == ROWS
            left = allocated_since(base)
    finally:
        gc.enable()
    assert left < MB // 2, f"{left / MB:.1f} MiB left after 8 batches of ~1 MB"


@pytest.mark.parametrize("failure", ["503", "timeout"])
async def test_a_request_backing_off_holds_no_body(traced: None, failure: str) -> None:
    """The cyclic collector is off, as good as it is while rows stream (it runs rarely then, and a
    request that waited for its timeout is old enough to be collected last): a body kept alive by
    a reference cycle would stay."""
    answers = iter(["ok", failure, "ok"])
    during_backoff: list[int] = []
    base = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        answer = next(answers)
        if answer == "timeout":
            raise httpx.ReadTimeout("no answer in time", request=request)
        return httpx.Response(200 if answer == "ok" else int(answer), json={"row_ids": []})

    async def sleep(delay: float) -> None:
        during_backoff.append(allocated_since(base))

    one = batch(0)
    gc.disable()
    try:
        async with client(httpx.MockTransport(handler), CAP, sleep) as api:
            inserter = Inserter(api, "dataset", "d1", max_rows=ROWS, max_bytes=64 * MB)
            base = await warmed(inserter)
            result = await inserter.send(one)
    finally:
        gc.enable()
    assert len(result.written) == ROWS  # sent again after the failure, and answered
    assert len(during_backoff) == 1
    assert during_backoff[0] < MB // 2, f"{during_backoff[0] / MB:.1f} MiB held while backing off"
