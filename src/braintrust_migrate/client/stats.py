"""Counters of one client, and the transport layer that counts every exchange on the wire."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import httpx

from braintrust_migrate.liblog import get_logger

log = get_logger(__name__)


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    errors: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    skipped_items: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _sent(request: httpx.Request) -> int:
    try:
        return len(request.content)
    except httpx.RequestNotRead:  # a streamed upload: not counted
        return 0


class StatsLayer(httpx.AsyncBaseTransport):
    """Counts each answered hop (a redirect is a request of its own) and what it sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport, stats: ClientStats, side: str) -> None:
        self._inner, self._stats, self._side = inner, stats, side

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self._inner.handle_async_request(request)
        self._stats.requests += 1
        self._stats.bytes_sent += _sent(request)
        log.debug(
            "http",
            side=self._side,
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
