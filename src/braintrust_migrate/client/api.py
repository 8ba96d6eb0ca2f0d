"""The async HTTP client for one side (source or destination) of a migration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import httpx
import orjson
import structlog
from httpx_aiohttp import AiohttpTransport

from braintrust_migrate.client import redirects
from braintrust_migrate.client.body import (
    ACCEPT_ENCODING,
    BadEncoding,
    BodyTooLarge,
    buffered,
    iter_decoded,
    read_capped,
)
from braintrust_migrate.client.errors import (
    ApiError,
    MalformedResponse,
    NetworkError,
    PaginationError,
    RedirectRefused,
    ResponseTooLarge,
    error_for_status,
)
from braintrust_migrate.client.limiter import AdaptiveLimiter
from braintrust_migrate.client.payload import decode, list_items
from braintrust_migrate.client.retry import RetryPolicy, parse_retry_after
from braintrust_migrate.redact import register_secret, scrub

log = structlog.get_logger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
# An error body only feeds a message: keep its start, never fail on its size.
ERROR_BODY_BYTES = 64 * 1024

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
    skipped_items: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


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


# Where a response's Location header is kept: see _keep_location.
LOCATION = "x-braintrust-migrate-location"


async def _keep_location(response: httpx.Response) -> None:
    # httpx parses Location even when not following redirects, and a bad one (port 99999) becomes a
    # transport error that is retried. Redirects are followed by hand (redirects.py): hide it from httpx.
    if "location" in response.headers:
        response.headers[LOCATION] = response.headers.pop("location")


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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_insecure_http: bool = False,
    ) -> None:
        register_secret(api_key)
        self.side = side
        self.base_url = base_url.rstrip("/")
        self.org_name = org_name
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.limiter = AdaptiveLimiter(max_concurrent_requests)
        self.stats = ClientStats()
        self.max_response_bytes = max_response_bytes
        self.allow_insecure_http = allow_insecure_http
        self._sleep = sleep
        self._auth = {"Authorization": f"Bearer {api_key}"}
        limits = httpx.Limits(
            max_connections=max_concurrent_requests, max_keepalive_connections=max_concurrent_requests
        )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=limits,
            follow_redirects=False,
            event_hooks={"response": [_keep_location]},
            transport=transport or AiohttpTransport(limits=limits),
            headers={
                "User-Agent": "braintrust-migrate",
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
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
        own_origin = redirects.origin(self.base_url)
        for _ in range(MAX_REDIRECTS + 1):
            # Credentials go only to the API's own origin, never to a redirect target elsewhere.
            headers = dict(self._auth) if auth and redirects.origin(url) == own_origin else {}
            if content is not None:
                headers["Content-Type"] = "application/json"
            started = time.perf_counter()
            request = self._http.build_request(method, url, params=params, content=content, headers=headers)
            response = await self._http.send(request, stream=True)
            location = response.headers.get(LOCATION)
            redirect = response.status_code in REDIRECT_STATUSES and location is not None
            self.stats.requests += 1
            self.stats.bytes_sent += len(content or b"")
            try:
                body = b"" if redirect else await self._read(response, method, path)
            finally:
                await response.aclose()
            self.stats.bytes_received += len(body)
            log.debug(
                "http",
                side=self.side,
                method=method,
                path=path,
                status=response.status_code,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
            if not redirect or location is None:
                return buffered(response, body)
            try:
                hop = redirects.next_hop(
                    status=response.status_code,
                    current=str(response.url),
                    location=location,
                    method=method,
                    own_origin=own_origin,
                    allow_insecure_http=self.allow_insecure_http,
                )
            except redirects.Refused as refused:
                raise RedirectRefused(
                    side=self.side,
                    method=method,
                    path=path,
                    url=str(response.url),
                    status=response.status_code,
                    reason=str(refused),
                ) from None
            url, method, params = hop.url, hop.method, {}
            content = content if hop.keep_body else None
        raise RedirectRefused(
            side=self.side,
            method=method,
            path=path,
            url=url,
            status=response.status_code,
            reason=f"more than {MAX_REDIRECTS} redirects in a row",
        )

    async def _read(self, response: httpx.Response, method: str, path: str) -> bytes:
        """The decoded body, never more than the cap in memory (error bodies are cut short instead)."""
        failed = response.status_code >= 400
        cap = min(self.max_response_bytes, ERROR_BODY_BYTES) if failed else self.max_response_bytes
        where = {"side": self.side, "method": method, "path": path, "url": str(response.url)}
        try:
            return await read_capped(response, cap, truncate=failed)
        except BodyTooLarge:
            raise ResponseTooLarge(**where, status=response.status_code, cap=cap) from None
        except BadEncoding as bad:
            if failed:  # the status says enough
                return b""
            raise MalformedResponse(**where, status=response.status_code, reason=str(bad)) from None

    def decode(self, response: httpx.Response, expect: type | None = None) -> Any:
        """The JSON of a response from `request`, or MalformedResponse (with `expect`, of that type)."""
        return decode(response, self.side, expect)

    async def get_json(
        self, path: str, params: Mapping[str, Any] | None = None, *, expect: type | None = None, **kw: Any
    ) -> Any:
        """The JSON answer; with `expect` (dict, list) anything else is a MalformedResponse."""
        return decode(await self.request("GET", path, params=params, **kw), self.side, expect)

    async def post_json(
        self,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool = True,
        expect: type | None = None,
    ) -> Any:
        response = await self.request("POST", path, json=body, params=params, idempotent=idempotent)
        return decode(response, self.side, expect)

    async def put_json(self, path: str, body: Any, *, expect: type | None = None) -> Any:
        return decode(await self.request("PUT", path, json=body), self.side, expect)

    async def patch_json(self, path: str, body: Any, *, expect: type | None = None) -> Any:
        return decode(await self.request("PATCH", path, json=body), self.side, expect)

    async def delete_json(self, path: str, body: Any = None, *, expect: type | None = None) -> Any:
        return decode(await self.request("DELETE", path, json=body), self.side, expect)

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
            for item in self._objects(await self.request("GET", path, params=base), path):
                yield item
            return
        after: str | None = None
        while True:
            response = await self.request(
                "GET", path, params={**base, "limit": page_size, "starting_after": after}
            )
            raw_count, page = self._page(response, path)
            for item in page:
                yield item
            if raw_count < page_size:
                return
            last = page[-1]["id"] if page else None
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

    async def open_blob(
        self, url: str, check: Callable[[str], Awaitable[None]] | None = None
    ) -> tuple[BlobStream, int | None]:
        """A streamed GET of a signed blob URL (no credentials); holds one request slot until closed.
        Redirects are followed only with `check`, which sees (and may refuse, by raising) each hop."""
        stack = AsyncExitStack()
        await stack.enter_async_context(self.limiter.slot())
        for hop in range(MAX_REDIRECTS + 1):
            try:
                response = await stack.enter_async_context(self._http.stream("GET", url))
            except httpx.TransportError as exc:
                await stack.aclose()
                raise NetworkError(
                    side=self.side,
                    method="GET",
                    path="<blob>",
                    url=url,
                    reason=_describe_transport_error(exc),
                ) from None
            location = response.headers.get(LOCATION)
            if response.status_code not in REDIRECT_STATUSES or not location:
                break
            self.stats.requests += 1
            await response.aclose()
            if check is None or hop == MAX_REDIRECTS:
                await stack.aclose()
                raise ApiError(
                    side=self.side,
                    method="GET",
                    path="<blob>",
                    status=response.status_code,
                    message=f"blob download redirected ({response.status_code}); not followed",
                )
            try:
                url = redirects.resolve(str(response.url), location)
                await check(url)
            except redirects.Refused as refused:
                await stack.aclose()
                raise RedirectRefused(
                    side=self.side,
                    method="GET",
                    path="<blob>",
                    url=str(response.url),
                    status=response.status_code,
                    reason=str(refused),
                ) from None
            except BaseException:
                await stack.aclose()
                raise
        self.stats.requests += 1
        if response.status_code >= 400:
            body = (await _error_body(response)).decode(errors="replace")
            await stack.aclose()
            raise error_for_status(response.status_code)(
                side=self.side, method="GET", path="<blob>", status=response.status_code, body=body
            )
        length = response.headers.get("content-length")
        return BlobStream(response, stack, self.stats, self.side), int(
            length
        ) if length and length.isdigit() else None

    async def put_blob(self, url: str, data: Any, headers: dict[str, str]) -> None:
        """PUT bytes (or an async iterator of chunks) to a signed upload URL, without credentials."""
        async with self.limiter.slot():
            try:
                async with self._http.stream("PUT", url, content=data, headers=headers) as response:
                    body = await _error_body(response) if response.status_code >= 400 else b""
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
                    body=body.decode(errors="replace"),
                )

    async def list_all(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> list[dict]:
        return [item async for item in self.paginate(path, params, **kw)]

    def _objects(self, response: httpx.Response, path: str) -> list[dict[str, Any]]:
        return self._page(response, path)[1]

    def _page(self, response: httpx.Response, path: str) -> tuple[int, list[dict[str, Any]]]:
        """(items on the page, the usable ones): objects with a string id; the rest are skipped, counted."""
        items = list_items(response, self.side, path)
        objects = [item for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]
        if len(objects) < len(items):
            skipped = len(items) - len(objects)
            self.stats.skipped_items += skipped
            log.warning(
                "skipped malformed list items",
                side=self.side,
                path=path,
                skipped=skipped,
                reason="not an object with a string id",
            )
        return len(items), objects


class BlobStream:
    def __init__(
        self, response: httpx.Response, stack: AsyncExitStack, stats: ClientStats, side: str
    ) -> None:
        self._response, self._stack, self._stats, self._side = response, stack, stats, side

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Decoded in bounded steps: a compressed blob cannot decode to gigabytes in one chunk."""
        try:
            async for chunk in iter_decoded(self._response):
                self._stats.bytes_received += len(chunk)
                yield chunk
        except BadEncoding as bad:
            raise MalformedResponse(
                side=self._side,
                method="GET",
                path="<blob>",
                url=str(self._response.url),
                status=self._response.status_code,
                reason=str(bad),
            ) from None

    async def aclose(self) -> None:
        await self._stack.aclose()


async def _error_body(response: httpx.Response) -> bytes:
    """The start of a streamed error body, for the message: never large, never a decoding failure."""
    try:
        return await read_capped(response, ERROR_BODY_BYTES, truncate=True)
    except BadEncoding:
        return b""
