"""The sandbox's outermost checks, before any request body is read.

* ``Host``: only loopback names, IP literals, the bind host and configured extras are
  answered (421 otherwise). DNS rebinding needs a name the attacker's DNS controls, so
  refusing unknown names is enough; ports are not compared (port forwarding is legitimate).
* API key: a request with a body, on any route except the public ones (``/version``, ``/v1``,
  the admin API with its own header, signed upload/download URLs, CORS preflights), needs a
  known bearer key, checked from the headers alone (401) before a byte of the body is read.
* Body size: a hard cap (default 64 MiB, above anything the hosted API accepts) answered 413,
  from ``Content-Length`` up front or while a chunked body streams in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from braintrust_migrate.sandbox.core.common import ApiError
from braintrust_migrate.sandbox.events.attachments import BLOB_PATH

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
LOOPBACK_NAMES = frozenset({"localhost"})
# Paths that authenticate another way (admin header, signed URL) or not at all.
_PUBLIC_PREFIXES = ("/_sandbox/",)
_PUBLIC_EXACT = frozenset({"/version", "/v1", BLOB_PATH})
_UNCAPPED = frozenset({BLOB_PATH})  # streamed to the store in chunks, with its own limit


@dataclass
class GuardSettings:
    """``allowed_hosts``: extra Host names to answer (``*``: any). ``max_body_bytes``: the 413 cap."""

    bind_host: str = "127.0.0.1"
    allowed_hosts: set[str] = field(default_factory=set)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def host_allowed(self, host_header: str | None) -> bool:
        if host_header is None or "*" in self.allowed_hosts:
            return True  # no Host at all: HTTP/1.0, never a browser
        name = host_name(host_header)
        if name in LOOPBACK_NAMES or name == host_name(self.bind_host) or name in self.allowed_hosts:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def host_name(value: str) -> str:
    """``[::1]:8000`` -> ``::1``; ``LocalHost.:80`` -> ``localhost``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def parse_hosts(values: Iterable[str]) -> set[str]:
    return {host_name(v) if v.strip() != "*" else "*" for v in values if v.strip()}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the cap; the app's handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body too large: more than {limit} bytes (the sandbox's limit)")


def _public(method: str, path: str) -> bool:
    return method == "OPTIONS" or path in _PUBLIC_EXACT or path.startswith(_PUBLIC_PREFIXES)


class GuardMiddleware:
    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    @property
    def settings(self) -> GuardSettings:
        return self.state.settings["guard"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host")
        if not settings.host_allowed(host):
            message = (
                f"Host {host!r} is not served: the sandbox answers loopback names and IP addresses only "
                "(add names with --allowed-host or BT_SANDBOX_ALLOWED_HOSTS)"
            )
            await _respond(send, 421, message)
            return
        method, path = scope["method"], scope["path"]
        # Without a body there is nothing to buffer: the handler's own check suffices (and is cheaper).
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if has_body and not _public(method, path):
            refusal = await run_in_threadpool(self._refusal, headers.get("authorization"))
            if refusal is not None:
                await _respond(send, refusal.status, refusal.message)
                return
        if path in _UNCAPPED:
            await self.app(scope, receive, send)
            return
        limit = settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _respond(
                send, 413, f"Request body too large: {declared} bytes, the sandbox's limit is {limit}"
            )
            return
        await self._capped(scope, receive, send, limit)

    def _refusal(self, authorization: str | None) -> ApiError | None:
        try:
            with self.state.store.transaction() as tx:
                self.state.authenticate(tx, authorization)
        except ApiError as exc:
            return exc
        return None

    async def _capped(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:  # raised outside a route (e.g. while a middleware read the body)
            if started:
                raise
            await _respond(send, 413, exc.detail)


async def _respond(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
