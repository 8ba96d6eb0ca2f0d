"""The async HTTP client for one side (source or destination) of a migration.

A request goes through layers, each in its own module: the retry policy (retry.py) around the
adaptive limiter (limiter.py) around one attempt, which maps the answer onto a typed error
(errors.py). httpx sends it with the key as an httpx.Auth (auth.py) and follows redirects itself,
through two transport wrappers over the aiohttp transport: RedirectLayer vets each redirect
(redirects.py), StatsLayer counts each exchange (stats.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from braintrust_migrate.client import redirects
from braintrust_migrate.client.auth import ApiKeyAuth
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
    describe_transport_error,
    error_for_status,
    is_timeout,
)
from braintrust_migrate.client.limiter import AdaptiveLimiter
from braintrust_migrate.client.payload import decode, list_items
from braintrust_migrate.client.retry import RetryPolicy, parse_retry_after
from braintrust_migrate.client.stats import ClientStats, StatsLayer
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.redact import scrub

__all__ = ["ApiClient", "BlobStream", "ClientStats"]

log = get_logger(__name__)

DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
# An error body only feeds a message: keep its start, never fail on its size.
ERROR_BODY_BYTES = 64 * 1024
BLOB = "<blob>"

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: dict[str, Any]
    content: bytes | None
    auth: bool
    json: Any = None  # encoded at each attempt, in its slot: a queued or backing-off request holds no body

    def body(self) -> bytes | None:
        return orjson.dumps(self.json) if self.content is None and self.json is not None else self.content


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
        self._auth = ApiKeyAuth(api_key, self.base_url)
        self._origin = redirects.origin(self.base_url)
        limits = httpx.Limits(
            max_connections=max_concurrent_requests, max_keepalive_connections=max_concurrent_requests
        )
        wire = StatsLayer(transport or AiohttpTransport(limits=limits), self.stats, side)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=limits,
            follow_redirects=True,
            max_redirects=redirects.MAX_REDIRECTS,
            event_hooks={"request": [self._auth.ascope]},
            transport=redirects.RedirectLayer(wire),
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
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        call = _Call(method, path, clean_params, content, auth, json)
        return await self.retry.run(
            lambda: self.limiter.run(lambda: self._attempt(call)),
            sleep=self._sleep,
            idempotent=idempotent,
            surface=surface,
            on_retry=lambda error, attempt, delay: self._on_retry(call, error, attempt, delay),
        )

    def _on_retry(self, call: _Call, error: ApiError, attempt: int, delay: float) -> None:
        self.stats.retries += 1
        log.debug(
            "retrying request",
            side=self.side,
            method=call.method,
            path=call.path,
            status=error.status,
            attempt=attempt,
            delay=round(delay, 3),
            reason=scrub(error.message),
        )

    async def _attempt(self, call: _Call) -> httpx.Response:
        """One exchange (redirects included): the 2xx/3xx response, or its typed error."""
        where = {"side": self.side, "method": call.method, "path": call.path}
        try:
            response = await self._exchange(call)
        except httpx.TransportError as exc:
            self.stats.errors += 1
            reason = describe_transport_error(exc)
            url = self.url_for(call.path)
            raise NetworkError(**where, url=url, reason=reason, timed_out=is_timeout(exc)) from None
        except redirects.Refused as refused:
            raise RedirectRefused(
                **where, url=refused.url, status=refused.status, reason=str(refused)
            ) from None
        status = response.status_code
        if status < 400:
            return response
        self.stats.errors += 1
        if status == 429:
            self.stats.rate_limited += 1
        # Not kept in a local: the error's traceback holds this frame, and a local holding the
        # error back would make a cycle that keeps the response, its request and body alive
        # until the cyclic collector runs (rarely, while rows stream).
        raise status_error(response, where)

    async def _exchange(self, call: _Call) -> httpx.Response:
        content = call.body()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        rules = redirects.Rules(self._origin, allow_insecure_http=self.allow_insecure_http)
        request = self._http.build_request(
            call.method,
            self.url_for(call.path),
            params=call.params,
            content=content,
            headers=headers,
            extensions={redirects.RULES: rules},
        )
        response = await self._http.send(request, stream=True, auth=self._auth if call.auth else None)
        try:
            body = await self._read(response, call.method, call.path)
        finally:
            await response.aclose()
            unlink(response)
        self.stats.bytes_received += len(body)
        return buffered(response, body)

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

        def count(error: ApiError, attempt: int, delay: float) -> None:
            self.stats.retries += 1

        return await self.retry.run(operation, sleep=self._sleep, honour_retry_after=False, on_retry=count)

    async def open_blob(
        self, url: str, check: redirects.Check | None = None
    ) -> tuple[BlobStream, int | None]:
        """A streamed GET of a signed blob URL (no credentials); holds one request slot until closed.
        Redirects are followed only with `check`, which sees (and may refuse, by raising) each hop."""
        stack = AsyncExitStack()
        await stack.enter_async_context(self.limiter.slot())
        rules = redirects.Rules(self._origin, blob=True, check=check)
        try:
            response = await stack.enter_async_context(
                self._http.stream("GET", url, extensions={redirects.RULES: rules})
            )
        except BaseException as exc:
            await stack.aclose()
            raise self._blob_error("GET", url, exc) from None
        if response.status_code >= 400:
            body = (await _error_body(response)).decode(errors="replace")
            await stack.aclose()
            unlink(response)
            raise error_for_status(response.status_code)(
                side=self.side, method="GET", path=BLOB, status=response.status_code, body=body
            )
        length = response.headers.get("content-length")
        size = int(length) if length and length.isdigit() else None
        return BlobStream(response, stack, self.stats, self.side), size

    async def put_blob(self, url: str, data: Any, headers: dict[str, str]) -> None:
        """PUT bytes (or an async iterator of chunks) to a signed upload URL, without credentials.
        It carries no redirect rules, so a redirect is not followed (its status is taken as is)."""
        async with self.limiter.slot():
            try:
                async with self._http.stream("PUT", url, content=data, headers=headers) as response:
                    if response.status_code >= 400:
                        body = await _error_body(response)
                    else:  # a 200 counts only when its answer arrives whole: one cut off proves nothing
                        body = b""
                        async for _ in response.aiter_raw():
                            pass
                unlink(response)  # it holds the uploaded bytes
            except BaseException as exc:
                raise self._blob_error("PUT", url, exc) from None
            if response.status_code >= 400:
                raise error_for_status(response.status_code)(
                    side=self.side,
                    method="PUT",
                    path=BLOB,
                    status=response.status_code,
                    body=body.decode(errors="replace"),
                )

    def _blob_error(self, method: str, url: str, exc: BaseException) -> BaseException:
        """The typed error for a blob exchange that failed; anything else (a check's refusal) as is."""
        where = {"side": self.side, "method": method, "path": BLOB}
        if isinstance(exc, httpx.TransportError):
            return NetworkError(
                side=self.side, method=method, path=BLOB, url=_hop_url(exc, url),
                reason=describe_transport_error(exc), timed_out=is_timeout(exc),
            )  # fmt: skip
        if isinstance(exc, redirects.NotFollowed):
            return ApiError(**where, status=exc.status, message=str(exc))
        if isinstance(exc, redirects.Refused):
            return RedirectRefused(**where, url=exc.url, status=exc.status, reason=str(exc))
        return exc

    async def list_all(
        self, path: str, params: Mapping[str, Any] | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
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
        unlink(self._response)


def _hop_url(exc: httpx.TransportError, url: str) -> str:
    """The URL of the hop that failed (after redirects, not the first one)."""
    try:
        return str(exc.request.url)
    except RuntimeError:  # raised before httpx attached the request
        return url


def unlink(response: httpx.Response) -> None:
    """Break the cycle between an httpx response and its stream, which point at each other: it
    kept the request and its body (an insert batch, ~1.5 MB) until the cyclic collector ran, which
    while rows stream is rarely, and last for objects as old as a request that waited long."""
    response.stream = httpx.ByteStream(b"")


def status_error(response: httpx.Response, where: dict[str, str]) -> ApiError:
    status = response.status_code
    error = error_for_status(status)(**where, status=status, body=response.text)
    error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return error


async def _error_body(response: httpx.Response) -> bytes:
    """The start of a streamed error body, for the message: never large, never a decoding failure."""
    try:
        return await read_capped(response, ERROR_BODY_BYTES, truncate=True)
    except BadEncoding:
        return b""
