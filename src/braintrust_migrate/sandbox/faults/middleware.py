"""The fault middleware: the pure ASGI layer that answers 429/413/504/5xx or drops connections."""

from __future__ import annotations

import asyncio
import logging
import re
import sys

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from braintrust_migrate.sandbox.events.attachments import BLOB_PATH  # signed-URL transfers: no 413 here
from braintrust_migrate.sandbox.faults.controller import FaultController, Plan
from braintrust_migrate.sandbox.faults.settings import (
    BTQL_DEFAULT_LIMIT,
    BTQL_PATH,
    ConnectionDropped,
    never_faulted,
)

_DRAIN_CAP = 256 * 1024 * 1024  # bytes of a rejected body read (and discarded) before answering


# --- the middleware -----------------------------------------------------------------------------

_ERROR_BODIES: dict[int, tuple[bytes, bytes]] = {
    500: (b'{"error":"Internal server error (sandbox fault injection)"}', b"Internal Server Error"),
    502: (b'{"message":"Bad Gateway (sandbox fault injection)"}', b"502 Bad Gateway"),
    503: (b'{"message":"Service Unavailable (sandbox fault injection)"}', b"Service Unavailable"),
    504: (b'{"message":"Endpoint request timed out (sandbox fault injection)"}', b"Gateway Timeout"),
}
_LIMIT_LINE = re.compile(r"^\s*limit\s*:\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)


class FaultMiddleware:
    """Injects the faults a :class:`FaultController` is configured with (see module docstring)."""

    def __init__(self, app: ASGIApp, controller: FaultController) -> None:
        self.app = app
        self.controller = controller
        _install_log_filter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.controller.active:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if never_faulted(method, path):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        key = _bearer(headers.get("authorization"))
        org_id = _query_param(scope, "org_id") if path == BLOB_PATH and not key else None
        fscope = await self.controller.scope_for(key, org_id)
        if fscope is None or not fscope.settings.applies(method, path):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        plan = self.controller.begin(fscope, key or f"anonymous:{client[0] if client else '-'}")
        try:
            await self._run(plan, scope, receive, send, headers)
        finally:
            self.controller.end(plan)

    async def _run(
        self, plan: Plan, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        s, draws, ctl = plan.scope.settings, plan.draws, self.controller
        if plan.reject is not None:
            await _drain(receive)
            await _respond(send, *plan.reject)
            return
        delay = (s.latency_ms + s.latency_jitter_ms * draws.jitter) / 1000.0
        if delay > 0:
            ctl.count(plan.scope, "delayed")
            await asyncio.sleep(delay)

        method, path = scope["method"], scope["path"]
        check_size = s.max_request_bytes is not None and path != BLOB_PATH
        check_btql = s.btql_max_rows is not None and method == "POST" and path == BTQL_PATH
        if check_size or check_btql:
            limit = s.max_request_bytes if check_size else None
            declared = _int_or_none(headers.get("content-length"))
            if limit is not None and declared is not None and declared > limit:
                ctl.count(plan.scope, "too_large")
                await _drain(receive)
                await _respond(send, *_too_large(declared, limit))
                return
            body, size, ended = await _read_body(receive, limit)
            if ended is None:
                return  # the client went away
            if limit is not None and size > limit:
                ctl.count(plan.scope, "too_large")
                if not ended:
                    await _drain(receive)
                await _respond(send, *_too_large(None, limit))
                return
            if check_btql:
                assert s.btql_max_rows is not None
                rows = _btql_limit(body)
                if rows > s.btql_max_rows:
                    ctl.count(plan.scope, "btql_timeouts")
                    message = (
                        f"Query timed out: a page of {rows} rows is above this server's {s.btql_max_rows}"
                        " (sandbox fault injection); retry with a smaller limit"
                    )
                    await _respond(
                        send, 504, {"content-type": "application/json"}, orjson.dumps({"error": message})
                    )
                    return
            receive = _replay(body, receive)

        if draws.error < s.error_rate:
            status = s.error_statuses[
                min(int(draws.error_status * len(s.error_statuses)), len(s.error_statuses) - 1)
            ]
            ctl.count(plan.scope, "server_errors", f"status:{status}")
            as_json = s.error_body == "json" or (s.error_body == "random" and draws.error_body < 0.5)
            json_body, text_body = _ERROR_BODIES.get(status, _ERROR_BODIES[500])
            await _drain(receive)
            if as_json:
                await _respond(send, status, {"content-type": "application/json"}, json_body)
            else:
                await _respond(send, status, {"content-type": "text/plain; charset=utf-8"}, text_body)
            return

        if draws.drop < s.drop_rate:
            phase = s.drop_phase
            if phase == "random":
                phase = "before" if draws.drop_phase < 0.5 else "after"
            ctl.count(plan.scope, "drops", f"drops_{phase}")
            if phase == "before":
                await _drain(receive)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                    }
                )
                await send({"type": "http.response.body", "body": b'{"objects":[{"id":"', "more_body": True})
                raise ConnectionDropped(
                    "sandbox fault injection: connection dropped before the request was handled"
                )
            await self._run_then_drop(scope, receive, send)
            raise ConnectionDropped(
                "sandbox fault injection: connection dropped after the request was handled"
            )

        await self.app(scope, receive, send)

    async def _run_then_drop(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the app handle the request (and commit), then send only part of its response."""
        start: Message | None = None
        done = False

        async def cut(message: Message) -> None:
            nonlocal start, done
            if done:
                return
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                return
            body = message.get("body", b"")
            if not body and message.get("more_body", False):
                return
            headers = list(start.get("headers", []))
            if not body:  # nothing to cut: announce one byte that never comes
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", b"1"))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            done = True

        await self.app(scope, receive, cut)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _query_param(scope: Scope, name: str) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _too_large(size: int | None, limit: int) -> tuple[int, dict[str, str], bytes]:
    what = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    message = f"Request body too large: {what}, the limit is {limit} bytes (sandbox fault injection)"
    return 413, {"content-type": "application/json"}, orjson.dumps({"error": message})


def _btql_limit(body: bytes) -> int:
    """The page size a BTQL request asks for (its query's ``limit``; default 1000)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0  # malformed: let the app answer 400
    if not isinstance(payload, dict):
        return 0
    query = payload.get("query")
    # No limit in the query: the default page, or every row with disable_limit.
    default = sys.maxsize if payload.get("disable_limit") is True else BTQL_DEFAULT_LIMIT
    if isinstance(query, str):
        match = None
        for match in _LIMIT_LINE.finditer(query):  # noqa: B007 - the last limit line wins
            pass
        return int(match.group(1)) if match else default
    if isinstance(query, dict):
        limit = query.get("limit")
        return limit if isinstance(limit, int) and not isinstance(limit, bool) else default
    return 0


async def _read_body(receive: Receive, limit: int | None) -> tuple[bytes, int, bool | None]:
    """Read the body, stopping once it is over ``limit`` bytes (when given).

    Returns (body, bytes read, whether the whole body was read); None for the last when
    the client went away. An oversized body comes back empty.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", size, None
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        ended = not message.get("more_body", False)
        if limit is not None and size > limit:
            return b"", size, ended
        if ended:
            return b"".join(chunks), size, True


async def _drain(receive: Receive) -> None:
    """Read and discard what is left of the request body, so the client sees our response.

    (Answering while the client is still sending, then closing, can reset the connection
    before the client reads the answer.) At most ``_DRAIN_CAP`` bytes are read.
    """
    read = 0
    while read <= _DRAIN_CAP:
        message = await receive()
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _DropFilter(logging.Filter):
    """Keep uvicorn from logging our deliberate connection drops as application errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


_filter_installed = False


def _install_log_filter() -> None:
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_DropFilter())
        _filter_installed = True
