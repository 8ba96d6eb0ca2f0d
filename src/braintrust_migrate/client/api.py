"""The async HTTP client for one side (source or destination) of a migration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
import structlog
from httpx_aiohttp import AiohttpTransport

from braintrust_migrate.client.errors import (
    ApiError,
    NetworkError,
    PaginationError,
    error_for_status,
)
from braintrust_migrate.client.limiter import AdaptiveLimiter
from braintrust_migrate.client.retry import RetryPolicy, parse_retry_after
from braintrust_migrate.redact import register_secret, scrub

log = structlog.get_logger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    errors: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    parts = urlsplit(str(url))
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _describe_transport_error(exc: Exception) -> str:
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        # The aiohttp transport maps its errors onto httpx's coarsely: describe the original.
        detail = str(cause).strip()
        name = type(cause).__name__
        if isinstance(cause, TimeoutError):
            return "no response before the timeout"
        if "Disconnected" in name or "Payload" in name:
            return f"the connection was dropped mid-response ({detail or name})"
        return f"connection failed ({detail or name})"
    kind = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "no response before the read timeout",
        httpx.WriteTimeout: "timed out sending the request",
        httpx.PoolTimeout: "no free connection in the pool",
        httpx.RemoteProtocolError: "the connection was dropped mid-response",
    }.get(type(exc))
    if kind:
        return kind
    text = str(exc).strip()
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed ({text or 'refused'})"
    return text or type(exc).__name__


class ApiClient:
    """Bearer-authenticated JSON client with a shared in-flight cap, retries and counters."""

    def __init__(
        self,
        *,
        side: str,
        base_url: str,
        api_key: str,
        max_concurrent_requests: int = 20,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        org_name: str | None = None,
        page_size: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        register_secret(api_key)
        self.side = side
        self.base_url = base_url.rstrip("/")
        self.org_name = org_name
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.limiter = AdaptiveLimiter(max_concurrent_requests)
        self.stats = ClientStats()
        self._sleep = sleep
        self._auth = {"Authorization": f"Bearer {api_key}"}
        limits = httpx.Limits(
            max_connections=max_concurrent_requests, max_keepalive_connections=max_concurrent_requests
        )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=limits,
            follow_redirects=False,
            transport=transport or AiohttpTransport(limits=limits),
            headers={"User-Agent": "braintrust-migrate", "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"ApiClient(side={self.side!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def url_for(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        auth: bool = True,
        surface: frozenset[int] = frozenset(),
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send with retries; return the final 2xx response or raise a typed ApiError.

        Statuses in `surface` are raised at once, for callers that react to them
        themselves (a BTQL page that times out is retried smaller, not as is). A request
        that is not `idempotent` is not re-sent after a lost response or a 5xx, which
        may have been applied: the caller checks what landed first. (A 429 is refused
        before any work, so it is always retried.)
        """
        if json is not None:
            content = orjson.dumps(json)
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            async with self.limiter.slot() as permit:
                try:
                    response = await self._send(method, path, clean_params, content, auth)
                except httpx.TransportError as exc:
                    self.stats.errors += 1
                    error: ApiError = NetworkError(
                        side=self.side,
                        method=method,
                        path=path,
                        url=self.url_for(path),
                        reason=_describe_transport_error(exc),
                    )
                    status = None
                    retry_after = None
                else:
                    status = response.status_code
                    if status < 400:
                        self.limiter.on_success()
                        return response
                    self.stats.errors += 1
                    if status == 429:
                        self.stats.rate_limited += 1
                        self.limiter.on_throttled(permit)
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    error = error_for_status(status)(
                        side=self.side, method=method, path=path, status=status, body=response.text
                    )
            unsafe = not idempotent and status != 429
            if status in surface or unsafe or not self.retry.should_retry(attempt, status):
                raise error
            delay = self.retry.delay(attempt, retry_after)
            attempt += 1
            self.stats.retries += 1
            log.debug(
                "retrying request",
                side=self.side,
                method=method,
                path=path,
                status=status,
                attempt=attempt,
                delay=round(delay, 3),
                reason=scrub(error.message),
            )
            await self._sleep(delay)

    async def _send(
        self, method: str, path: str, params: dict[str, Any], content: bytes | None, auth: bool
    ) -> httpx.Response:
        url = self.url_for(path)
        own_origin = _origin(self.base_url)
        for _ in range(MAX_REDIRECTS + 1):
            # Credentials go only to the API's own origin, never to a redirect target elsewhere.
            headers = dict(self._auth) if auth and _origin(url) == own_origin else {}
            if content is not None:
                headers["Content-Type"] = "application/json"
            started = time.perf_counter()
            response = await self._http.request(method, url, params=params, content=content, headers=headers)
            await response.aread()
            self.stats.requests += 1
            self.stats.bytes_sent += len(content or b"")
            self.stats.bytes_received += len(response.content)
            log.debug(
                "http",
                side=self.side,
                method=method,
                path=path,
                status=response.status_code,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
            if response.status_code not in REDIRECT_STATUSES or "location" not in response.headers:
                return response
            url = urljoin(str(response.url), response.headers["location"])
            params = {}
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, content = "GET", None
        return response

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return _decode(await self.request("GET", path, params=params, **kw), self.side)

    async def post_json(
        self, path: str, body: Any = None, params: Mapping[str, Any] | None = None, *, idempotent: bool = True
    ) -> Any:
        return _decode(
            await self.request("POST", path, json=body, params=params, idempotent=idempotent), self.side
        )

    async def put_json(self, path: str, body: Any) -> Any:
        return _decode(await self.request("PUT", path, json=body), self.side)

    async def patch_json(self, path: str, body: Any) -> Any:
        return _decode(await self.request("PATCH", path, json=body), self.side)

    async def delete_json(self, path: str, body: Any = None) -> Any:
        return _decode(await self.request("DELETE", path, json=body), self.side)

    async def paginate(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int | None = None,
        cursor: bool = True,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every object of a list endpoint.

        With `cursor`, pages by `starting_after` until a short or empty page. Without it
        (env_var, /environment), one request without a limit returns the whole list.
        """
        base = dict(params or {})
        page_size = page_size or self.page_size
        if not cursor:
            for item in _objects(await self.get_json(path, base), path, self.side):
                yield item
            return
        after: str | None = None
        while True:
            page = _objects(
                await self.get_json(path, {**base, "limit": page_size, "starting_after": after}),
                path,
                self.side,
            )
            for item in page:
                yield item
            if len(page) < page_size:
                return
            last = page[-1].get("id")
            if not last or last == after:
                raise PaginationError(
                    side=self.side,
                    method="GET",
                    path=path,
                    status=200,
                    message=f"{path} returned a full page whose cursor did not advance (id {last!r})",
                )
            after = last

    async def retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a multi-request operation again on a retryable failure (blob transfers,
        whose streamed bodies the request loop cannot replay)."""
        attempt = 0
        while True:
            try:
                return await operation()
            except ApiError as error:
                if not self.retry.should_retry(attempt, error.status):
                    raise
                self.stats.retries += 1
                await self._sleep(self.retry.delay(attempt))
                attempt += 1

    async def open_blob(self, url: str) -> tuple[BlobStream, int | None]:
        """A streamed GET of a signed blob URL (no credentials); holds one request slot until closed."""
        stack = AsyncExitStack()
        await stack.enter_async_context(self.limiter.slot())
        try:
            response = await stack.enter_async_context(self._http.stream("GET", url))
        except httpx.TransportError as exc:
            await stack.aclose()
            raise NetworkError(
                side=self.side, method="GET", path="<blob>", url=url, reason=_describe_transport_error(exc)
            ) from None
        self.stats.requests += 1
        if response.status_code >= 400:
            body = (await response.aread()).decode(errors="replace")
            await stack.aclose()
            raise error_for_status(response.status_code)(
                side=self.side, method="GET", path="<blob>", status=response.status_code, body=body
            )
        length = response.headers.get("content-length")
        return BlobStream(response, stack, self.stats), int(length) if length and length.isdigit() else None

    async def put_blob(self, url: str, data: Any, headers: dict[str, str]) -> None:
        """PUT bytes (or an async iterator of chunks) to a signed upload URL, without credentials."""
        async with self.limiter.slot():
            try:
                response = await self._http.put(url, content=data, headers=headers)
            except httpx.TransportError as exc:
                raise NetworkError(
                    side=self.side,
                    method="PUT",
                    path="<blob>",
                    url=url,
                    reason=_describe_transport_error(exc),
                ) from None
            self.stats.requests += 1
            if isinstance(data, bytes):
                self.stats.bytes_sent += len(data)
            if response.status_code >= 400:
                raise error_for_status(response.status_code)(
                    side=self.side,
                    method="PUT",
                    path="<blob>",
                    status=response.status_code,
                    body=response.text,
                )

    async def list_all(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> list[dict]:
        return [item async for item in self.paginate(path, params, **kw)]


class BlobStream:
    def __init__(self, response: httpx.Response, stack: AsyncExitStack, stats: ClientStats) -> None:
        self._response, self._stack, self._stats = response, stack, stats

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_bytes():
            self._stats.bytes_received += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._stack.aclose()


def _decode(response: httpx.Response, side: str) -> Any:
    if not response.content:
        return None
    if "json" not in response.headers.get("content-type", "json"):
        return response.text
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ApiError(
            side=side,
            method=response.request.method,
            path=response.request.url.path,
            status=response.status_code,
            body=response.text,
            message=f"{side} API returned invalid JSON for {response.request.method} {response.request.url.path}",
        ) from None


def _objects(payload: Any, path: str, side: str) -> list[dict[str, Any]]:
    # /v1/acl/list_org answers with a bare array; every other list with {"objects": [...]}.
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("objects"), list):
        return payload["objects"]
    raise ApiError(
        side=side,
        method="GET",
        path=path,
        status=200,
        message=f"{side} API returned an unexpected list shape for {path}",
    )
