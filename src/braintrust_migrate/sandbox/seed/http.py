"""A small async HTTP client for the seed generator and its inventory reader.

It speaks the Braintrust REST API with a Bearer key, keeps a bounded number of
requests in flight, retries 429 / 5xx / connection errors a few times, and turns
anything else that is not a 2xx into a :class:`SeedHTTPError` carrying the method,
path, status and the start of the body.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Mapping
from typing import Any

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class SeedHTTPError(RuntimeError):
    """A request the server refused (after retries, where retrying made sense)."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        where = f"{method} {path}"
        if status is None:
            super().__init__(f"{where}: {detail}")
        else:
            super().__init__(f"{where} -> HTTP {status}: {detail}")


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class SeedClient:
    """Bearer-authenticated JSON client with a concurrency cap and light retries."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        concurrency: int = 8,
        timeout: float = 30.0,
        max_attempts: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._max_attempts = max(1, max_attempts)
        self._jitter = random.Random(0x5EED)
        self.requests = 0

    async def __aenter__(self) -> SeedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON body (or text)."""
        attempt = 0
        while True:
            attempt += 1
            delay = 0.0
            async with self._sem:
                self.requests += 1
                try:
                    resp = await self._client.request(method, path, json=json, params=params)
                except httpx.TransportError as exc:
                    if attempt >= self._max_attempts:
                        raise SeedHTTPError(method, path, None, f"{type(exc).__name__}: {exc}") from exc
                    delay = 0.2 * 2 ** (attempt - 1)
                else:
                    if resp.status_code < 300:
                        if not resp.content:
                            return None
                        ctype = resp.headers.get("content-type", "")
                        return resp.json() if "json" in ctype else resp.text
                    if resp.status_code not in RETRY_STATUSES or attempt >= self._max_attempts:
                        raise SeedHTTPError(method, path, resp.status_code, _snippet(resp.text))
                    told = _retry_after_seconds(resp.headers.get("retry-after"))
                    delay = 0.2 * 2 ** (attempt - 1) if told is None else told
            await asyncio.sleep(min(delay, 10.0) * (1 + 0.25 * self._jitter.random()))

    async def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return await self.request("GET", path, params=clean or None)

    async def list_all(
        self, path: str, *, page_size: int = 200, paginate: bool = True, **params: Any
    ) -> list[Any]:
        """Every object of a list endpoint, following ``starting_after`` cursors."""
        out: list[Any] = []
        after: str | None = None
        while True:
            query = dict(params)
            if paginate:
                query["limit"] = page_size
                if after:
                    query["starting_after"] = after
            body = await self.get(path, **query)
            page = body if isinstance(body, list) else (body or {}).get("objects", [])
            out.extend(page)
            if not paginate or len(page) < page_size or not page:
                return out
            after = page[-1]["id"]


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
