"""A server that answers one request at a time, slower the more are queued at it: sending as
many at once as the cap allows makes every request wait past the timeout, attempt after attempt.
The client reads a timeout (like a 429, 503 or 504) as overload and halves what it sends at once,
so the queue shortens and the requests get through. The server model is the test's own."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from braintrust_migrate.client import ApiClient, ApiError, NetworkError
from braintrust_migrate.client.limiter import AdaptiveLimiter
from braintrust_migrate.client.retry import RetryPolicy

SERVICE = 0.01  # seconds per request at the server, one at a time
TIMEOUT = 0.1  # the client's read timeout: about 10 requests queued ahead is too many
CAP = 30
REQUESTS = 90


class OneAtATime:
    """Requests wait in line for the one worker; a request whose wait passes its read timeout
    gets no answer (httpx.ReadTimeout), as a real client would see. Counts what got answered."""

    def __init__(self) -> None:
        self.worker = asyncio.Lock()
        self.answered = 0
        self.most_in_line = 0
        self.in_line = 0

    async def handler(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions["timeout"]["read"]
        self.in_line += 1
        self.most_in_line = max(self.most_in_line, self.in_line)
        try:
            async with asyncio.timeout(timeout):
                async with self.worker:
                    await asyncio.sleep(SERVICE)
        except TimeoutError:
            raise httpx.ReadTimeout("no answer in time", request=request) from None
        finally:
            self.in_line -= 1
        self.answered += 1
        return httpx.Response(200, json={"ok": True})


async def test_timeouts_cut_what_is_sent_at_once_until_requests_get_through() -> None:
    server = OneAtATime()
    api = ApiClient(
        side="source", base_url="https://api.example.test", api_key="sk-test", max_concurrent_requests=CAP,
        timeout=TIMEOUT,
        transport=httpx.MockTransport(server.handler), retry=RetryPolicy(attempts=6, base_delay=0.01),
    )  # fmt: skip
    async with api:
        results = await asyncio.gather(
            *(api.get_json("/v1/project") for _ in range(REQUESTS)), return_exceptions=True
        )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, failed[:1]
    assert server.answered == REQUESTS
    assert api.limiter.limit < CAP  # it sends fewer at once than the cap allows


@pytest.mark.parametrize(
    ("error", "cut"),
    [
        (NetworkError(side="dest", method="POST", path="/x", url="u", reason="r", timed_out=True), True),
        (NetworkError(side="dest", method="POST", path="/x", url="u", reason="refused"), False),
        (ApiError(side="dest", method="POST", path="/x", status=503), True),
        (ApiError(side="dest", method="POST", path="/x", status=504), True),
        (ApiError(side="dest", method="POST", path="/x", status=500), False),
        (ApiError(side="dest", method="POST", path="/x", status=429), True),
    ],
)
async def test_what_counts_as_overload(error: ApiError, cut: bool) -> None:
    limiter = AdaptiveLimiter(20)

    async def attempt() -> None:
        raise error

    with pytest.raises(ApiError):
        await limiter.run(attempt)
    assert limiter.limit == (10 if cut else 20)
