"""Fault injection for the sandbox: latency, 429s, 5xx, 413, BTQL timeouts, dropped connections.

A pure ASGI middleware (:class:`FaultMiddleware`) in front of every sandbox route,
driven by a :class:`FaultController` that holds the settings: one server-wide
:class:`FaultSettings` and/or one per org. A request authenticated by an API key
whose home org (the org the key was created in) has its own settings uses those,
*instead of* the server-wide ones; every other request uses the server-wide ones.

What a faulted request may meet, in this order:

1. **429** with ``Retry-After`` when the key's token bucket (``rate_limit_rps``,
   ``rate_limit_burst``) is empty or it already has ``max_concurrent_per_key``
   requests in flight. ``Retry-After`` is delta-seconds or an HTTP date
   (``retry_after_format``), answered at once (no latency).
2. latency: ``latency_ms`` plus a uniform ``[0, latency_jitter_ms)`` (``asyncio.sleep``).
3. **413** when the body is larger than ``max_request_bytes``: ``Content-Length`` is
   checked first, then the streamed size (the body is read only up to the limit).
   Signed-URL blob transfers (attachments) are exempt: they have their own limit.
4. **504** for ``POST /btql`` when the query's ``limit`` is above ``btql_max_rows``
   (like a query timeout; a query without ``limit`` counts as the default 1000 rows, or
   as unbounded with ``disable_limit: true``).
5. a random share ``error_rate`` of 500/502/503/504 (``error_statuses``), with JSON or
   text bodies (``error_body``).
6. a random share ``drop_rate`` of dropped connections: the status line, headers and
   part of the body are sent, then the connection is closed, so clients see a protocol
   error. ``drop_phase`` ``before`` drops without calling the app (nothing written);
   ``after`` lets the app run and commit, then loses its response; ``random`` picks one
   per request.

Every fault except an ``after`` drop answers before the request reaches the app, so
a failed request wrote nothing. ``GET /v1``, ``OPTIONS`` and the ``/_sandbox`` admin
API are never faulted; ``include_paths`` / ``exclude_paths`` (path prefixes matched
on ``/`` boundaries) and ``methods`` narrow the rest.

Randomness is deterministic: each settings scope (server, or one org) owns a
``random.Random(seed)`` and every faulted request draws the same number of values
from it on arrival, so the same seed and the same request order give the same faults.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from braintrust_migrate.sandbox.attachments import BLOB_PATH  # signed-URL transfers: no 413 here
from braintrust_migrate.sandbox.store import Store

log = logging.getLogger(__name__)

RETRY_AFTER_FORMATS = ("seconds", "http-date", "random")
DROP_PHASES = ("before", "after", "random")
ERROR_BODIES = ("json", "text", "random")
ERROR_STATUSES = (500, 502, 503, 504)
BTQL_PATH = "/btql"
BTQL_DEFAULT_LIMIT = 1000
_NEVER_FAULTED_PREFIX = "/_sandbox"
_DRAIN_CAP = 256 * 1024 * 1024  # bytes of a rejected body read (and discarded) before answering
_DRAWS_PER_REQUEST = 7


class ConnectionDropped(Exception):
    """Raised by the middleware to make the ASGI server close the connection mid-response."""


# --- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultSettings:
    """What to inject. Every fault is off by default; see the module docstring for the order."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit_rps: float | None = None
    rate_limit_burst: int | None = None  # token bucket size (default: max(1, ceil(rps)))
    max_concurrent_per_key: int | None = None
    retry_after_seconds: int | None = None  # None: seconds until a token is due (at least 1)
    retry_after_format: str = "seconds"  # seconds | http-date | random
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = ERROR_STATUSES
    error_body: str = "random"  # json | text | random
    max_request_bytes: int | None = None
    btql_max_rows: int | None = None
    drop_rate: float = 0.0
    drop_phase: str = "random"  # before | after | random
    seed: int | None = 0  # None: a fresh random seed
    include_paths: tuple[str, ...] = ()  # path prefixes; empty: every path
    exclude_paths: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()  # HTTP methods; empty: every method

    def __post_init__(self) -> None:
        for name in ("latency_ms", "latency_jitter_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("error_rate", "drop_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.rate_limit_rps is not None and self.rate_limit_rps <= 0:
            raise ValueError("rate_limit_rps must be > 0")
        for name in (
            "rate_limit_burst",
            "max_concurrent_per_key",
            "max_request_bytes",
            "btql_max_rows",
            "retry_after_seconds",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer")
        if self.rate_limit_burst is not None and self.rate_limit_burst < 1:
            raise ValueError("rate_limit_burst must be >= 1")
        if self.max_concurrent_per_key is not None and self.max_concurrent_per_key < 1:
            raise ValueError("max_concurrent_per_key must be >= 1")
        if self.retry_after_format not in RETRY_AFTER_FORMATS:
            raise ValueError(f"retry_after_format must be one of {', '.join(RETRY_AFTER_FORMATS)}")
        if self.drop_phase not in DROP_PHASES:
            raise ValueError(f"drop_phase must be one of {', '.join(DROP_PHASES)}")
        if self.error_body not in ERROR_BODIES:
            raise ValueError(f"error_body must be one of {', '.join(ERROR_BODIES)}")
        if not self.error_statuses or not all(
            isinstance(s, int) and 500 <= s <= 599 for s in self.error_statuses
        ):
            raise ValueError("error_statuses must be a non-empty list of 5xx statuses")
        for name in ("include_paths", "exclude_paths"):
            if not all(isinstance(p, str) and p.startswith("/") for p in getattr(self, name)):
                raise ValueError(f"{name} must be path prefixes starting with '/'")
        object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultSettings:
        """Settings from JSON / YAML (unknown keys are an error; lists become tuples)."""
        if not isinstance(data, Mapping):
            raise ValueError("fault settings must be an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("error_statuses", "include_paths", "exclude_paths", "methods"):
                if isinstance(value, str | bytes) or not isinstance(value, Iterable):
                    raise ValueError(f"{name} must be a list")
                value = tuple(value)
            elif name in ("latency_ms", "latency_jitter_ms", "error_rate", "drop_rate", "rate_limit_rps"):
                if value is not None:
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        raise ValueError(f"{name} must be a number")
                    value = float(value)
            elif (
                name == "seed"
                and value is not None
                and (isinstance(value, bool) or not isinstance(value, int))
            ):
                raise ValueError("seed must be an integer or null")
            values[name] = value
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("error_statuses", "include_paths", "exclude_paths", "methods"):
            out[name] = list(out[name])
        return out

    def applies(self, method: str, path: str) -> bool:
        """Whether a request with this method and path is subject to these settings."""
        if self.methods and method.upper() not in self.methods:
            return False
        if self.include_paths and not any(_under(path, p) for p in self.include_paths):
            return False
        return not any(_under(path, p) for p in self.exclude_paths)


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/") or "/"
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def never_faulted(method: str, path: str) -> bool:
    return (
        method == "OPTIONS"
        or path in ("/v1", "/v1/")
        or path == _NEVER_FAULTED_PREFIX
        or path.startswith(_NEVER_FAULTED_PREFIX + "/")
    )


# --- counters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultStats:
    """How many requests were subject to faults, and what was injected."""

    requests: int = 0  # requests the settings applied to
    delayed: int = 0
    rate_limited: int = 0  # 429s, both kinds
    rate_limited_rps: int = 0
    rate_limited_concurrency: int = 0
    server_errors: int = 0  # random 5xx (not the BTQL 504s)
    server_errors_by_status: dict[int, int] = field(default_factory=dict)
    too_large: int = 0  # 413s
    btql_timeouts: int = 0  # 504s for BTQL pages above btql_max_rows
    drops: int = 0
    drops_before: int = 0
    drops_after: int = 0

    @property
    def injected(self) -> int:
        """Every request that did not get its normal response."""
        return self.rate_limited + self.server_errors + self.too_large + self.btql_timeouts + self.drops

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["server_errors_by_status"] = {str(k): v for k, v in sorted(self.server_errors_by_status.items())}
        out["injected"] = self.injected
        return out


def _stats_of(counter: Counter[str]) -> FaultStats:
    by_status = {int(k.split(":", 1)[1]): v for k, v in counter.items() if k.startswith("status:")}
    plain = {
        f.name: counter.get(f.name, 0) for f in fields(FaultStats) if f.name != "server_errors_by_status"
    }
    return FaultStats(**plain, server_errors_by_status=by_status)


# --- controller ---------------------------------------------------------------------------------


@dataclass
class _Draws:
    """The random values one request consumes, always the same number of them."""

    jitter: float
    error: float
    error_status: float
    error_body: float
    drop: float
    drop_phase: float
    retry_after_format: float


class _Scope:
    """One settings scope (the server, or one org): settings, RNG, rate-limit state."""

    def __init__(self, settings: FaultSettings, label: str, name: str | None) -> None:
        self.settings = settings
        self.label = label  # stats key: "server" or "org:<org id>"
        self.name = name  # org name (None for the server scope)
        self.rng = random.Random(
            settings.seed if settings.seed is not None else random.SystemRandom().random()
        )
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self.in_flight: Counter[str] = Counter()


@dataclass
class _Plan:
    scope: _Scope
    key: str
    draws: _Draws
    reject: tuple[int, dict[str, str], bytes] | None = None
    acquired: bool = False


class FaultController:
    """Holds the fault settings of one sandbox app; safe to use from any thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._server: _Scope | None = None
        self._orgs: dict[str, _Scope] = {}  # org id -> scope
        self._key_orgs: dict[str, str] = {}  # API key -> home org id (cache; never changes)
        self._stats: dict[str, Counter[str]] = {}

    # --- configuration --------------------------------------------------------------------

    def set(self, settings: FaultSettings | None, org: str | None = None) -> None:
        """Server-wide settings (``org=None``) or one org's (by name); ``None`` clears them."""
        if org is None:
            with self._lock:
                self._server = _Scope(settings, "server", None) if settings is not None else None
            return
        org_id = self._org_id(org)
        with self._lock:
            if settings is None:
                self._orgs.pop(org_id, None)
            else:
                self._orgs[org_id] = _Scope(settings, f"org:{org_id}", org)

    def clear(self) -> None:
        """Remove every setting (server and orgs) and reset the counters."""
        with self._lock:
            self._server = None
            self._orgs.clear()
            self._stats.clear()

    def settings(self, org: str | None = None) -> FaultSettings | None:
        if org is None:
            return self._server.settings if self._server else None
        scope = self._orgs.get(self._org_id(org))
        return scope.settings if scope else None

    def stats(self, org: str | None = None) -> FaultStats:
        """Counters of one org's scope, or the totals of every scope when ``org`` is None."""
        label = f"org:{self._org_id(org)}" if org is not None else None
        with self._lock:
            if label is not None:
                return _stats_of(Counter(self._stats.get(label, Counter())))
            total: Counter[str] = Counter()
            for counter in self._stats.values():
                total.update(counter)
            return _stats_of(total)

    def describe(self) -> dict[str, Any]:
        """The admin API's view: settings per scope and the counters."""
        with self._lock:
            server = self._server.settings.to_dict() if self._server else None
            orgs = {s.name or s.label: s.settings.to_dict() for s in self._orgs.values()}
            names = {s.label: f"org:{s.name}" for s in self._orgs.values()}
            by_scope = {
                names.get(label, label): _stats_of(Counter(c)).as_dict() for label, c in self._stats.items()
            }
        return {"server": server, "orgs": orgs, "stats": self.stats().as_dict(), "stats_by_scope": by_scope}

    def _org_id(self, org_name: str) -> str:
        with self._store.transaction() as tx:
            for row in tx.select("organization", org_ids=None):
                if row.body.get("name") == org_name:
                    return row.id
        raise ValueError(f"unknown org {org_name!r}")

    # --- per request ----------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._server is not None or bool(self._orgs)

    async def scope_for(self, key: str | None, org_id: str | None = None) -> _Scope | None:
        """The settings scope of a request made with ``key`` (or to a blob of ``org_id``)."""
        if self._orgs:
            if org_id is None and key:
                org_id = self._key_orgs.get(key)
                if org_id is None:
                    org_id = await run_in_threadpool(self._home_org, key)
            if org_id is not None:
                scope = self._orgs.get(org_id)
                if scope is not None:
                    return scope
        return self._server

    def _home_org(self, key: str) -> str | None:
        with self._store.transaction() as tx:
            info = tx.key_info(key)
        if info is None or not info.org_ids:
            return None
        self._key_orgs[key] = info.org_ids[0]
        return info.org_ids[0]

    def begin(self, scope: _Scope, key: str) -> _Plan:
        """Admission of one request: draw its random values, apply the rate limits."""
        s = scope.settings
        with self._lock:
            draws = _Draws(*(scope.rng.random() for _ in range(_DRAWS_PER_REQUEST)))
            plan = _Plan(scope, key, draws)
            self._count(scope, "requests")
            now = time.monotonic()
            if s.rate_limit_rps is not None:
                burst = float(s.rate_limit_burst or max(1, math.ceil(s.rate_limit_rps)))
                tokens, last = scope.buckets.get(key, (burst, now))
                tokens = min(burst, tokens + (now - last) * s.rate_limit_rps)
                if tokens >= 1.0:
                    scope.buckets[key] = (tokens - 1.0, now)
                else:
                    scope.buckets[key] = (tokens, now)
                    wait = (1.0 - tokens) / s.rate_limit_rps
                    self._count(scope, "rate_limited", "rate_limited_rps")
                    plan.reject = self._too_many(s, draws, wait, f"{s.rate_limit_rps:g} requests per second")
                    return plan
            if s.max_concurrent_per_key is not None:
                if scope.in_flight[key] >= s.max_concurrent_per_key:
                    self._count(scope, "rate_limited", "rate_limited_concurrency")
                    plan.reject = self._too_many(
                        s, draws, 1.0, f"{s.max_concurrent_per_key} concurrent requests"
                    )
                    return plan
                scope.in_flight[key] += 1
                plan.acquired = True
        return plan

    def end(self, plan: _Plan) -> None:
        if plan.acquired:
            with self._lock:
                plan.scope.in_flight[plan.key] -= 1
                if plan.scope.in_flight[plan.key] <= 0:
                    del plan.scope.in_flight[plan.key]

    def count(self, scope: _Scope, *names: str) -> None:
        with self._lock:
            self._count(scope, *names)

    def _count(self, scope: _Scope, *names: str) -> None:
        counter = self._stats.setdefault(scope.label, Counter())
        for name in names:
            counter[name] += 1

    @staticmethod
    def _too_many(
        s: FaultSettings, draws: _Draws, wait: float, what: str
    ) -> tuple[int, dict[str, str], bytes]:
        seconds = s.retry_after_seconds if s.retry_after_seconds is not None else max(1, math.ceil(wait))
        fmt = s.retry_after_format
        if fmt == "random":
            fmt = "http-date" if draws.retry_after_format < 0.5 else "seconds"
        if fmt == "http-date":
            value = email.utils.formatdate(math.ceil(time.time() + seconds), usegmt=True)
        else:
            value = str(seconds)
        body = orjson.dumps(
            {"error": f"Too many requests: this API key is limited to {what} (sandbox fault injection)"}
        )
        return 429, {"retry-after": value, "content-type": "application/json"}, body


def controller_of(app: Any) -> FaultController:
    """The :class:`FaultController` of a sandbox app (``create_app``'s result)."""
    return app.state.sandbox.settings["faults"]


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
        self, plan: _Plan, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
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


# --- wiring: app, admin API, CLI ----------------------------------------------------------------


def install(state: Any) -> FaultController:
    """Create the controller of an app's :class:`~braintrust_migrate.sandbox.app.SandboxState`."""
    controller = FaultController(state.store)
    state.settings["faults"] = controller
    return controller


def admin_routes(state: Any, guarded: Callable[[Callable[[dict[str, Any]], Any]], Any]) -> list[BaseRoute]:
    """``GET/PUT/DELETE /_sandbox/faults`` (``guarded`` checks the admin key and parses the body).

    PUT body: ``{"org": <org name or null>, "settings": {...} or null}`` (null clears that
    scope); DELETE clears every scope and the counters. All three answer like GET.
    """
    controller: FaultController = state.settings["faults"]

    def get(_: dict[str, Any]) -> dict[str, Any]:
        return controller.describe()

    def put(body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"org", "settings"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}; expected 'org' and 'settings'")
        if "settings" not in body:
            raise ValueError("'settings' is required (an object, or null to clear)")
        org = body.get("org")
        if org is not None and not isinstance(org, str):
            raise ValueError("'org' must be an org name or null")
        raw = body["settings"]
        controller.set(FaultSettings.from_dict(raw) if raw is not None else None, org=org)
        return controller.describe()

    def delete(_: dict[str, Any]) -> dict[str, Any]:
        controller.clear()
        return controller.describe()

    return [
        Route("/_sandbox/faults", guarded(get), methods=["GET"]),
        Route("/_sandbox/faults", guarded(put), methods=["PUT"]),
        Route("/_sandbox/faults", guarded(delete), methods=["DELETE"]),
    ]


def load_faults_file(text: str) -> tuple[FaultSettings | None, dict[str, FaultSettings]]:
    """Parse a faults file (YAML or JSON): ``{server: {...}, orgs: {<org name>: {...}}}``."""
    import yaml

    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict) or set(data) - {"server", "orgs"}:
        raise ValueError("a faults file is a mapping with 'server' and/or 'orgs'")
    server = FaultSettings.from_dict(data["server"]) if data.get("server") is not None else None
    orgs_raw = data.get("orgs") or {}
    if not isinstance(orgs_raw, dict):
        raise ValueError("'orgs' must map org names to fault settings")
    return server, {str(name): FaultSettings.from_dict(value or {}) for name, value in orgs_raw.items()}


# Field of FaultSettings for each ``sandbox serve`` flag that takes one value.
CLI_FLAGS = {
    "latency_ms": "--latency-ms",
    "latency_jitter_ms": "--latency-jitter-ms",
    "rate_limit_rps": "--rate-limit-rps",
    "rate_limit_burst": "--rate-limit-burst",
    "max_concurrent_per_key": "--max-concurrent-per-key",
    "retry_after_seconds": "--retry-after",
    "retry_after_format": "--retry-after-format",
    "error_rate": "--error-rate",
    "max_request_bytes": "--max-request-bytes",
    "btql_max_rows": "--btql-max-rows",
    "drop_rate": "--drop-rate",
    "drop_phase": "--drop-phase",
    "seed": "--fault-seed",
    "include_paths": "--fault-path",
    "exclude_paths": "--fault-exclude-path",
    "methods": "--fault-method",
}


def configure_from_cli(server: Any, flags: Mapping[str, Any], faults_file: str | None) -> None:
    """Apply ``sandbox serve`` fault flags (server-wide) and a faults file (server and per org).

    ``flags`` maps :class:`FaultSettings` field names to flag values (None / empty: not given).
    Flags override the file's server-wide settings field by field. Raises ``ValueError``.
    """
    server_settings: FaultSettings | None = None
    per_org: dict[str, FaultSettings] = {}
    if faults_file is not None:
        try:
            with open(faults_file, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ValueError(f"cannot read --faults-file {faults_file}: {exc.strerror or exc}") from None
        try:
            server_settings, per_org = load_faults_file(text)
        except Exception as exc:  # yaml errors too
            raise ValueError(f"--faults-file {faults_file}: {exc}") from None
    given = {k: v for k, v in flags.items() if v is not None and v != [] and v != ()}
    if given:
        base = server_settings.to_dict() if server_settings is not None else {}
        try:
            server_settings = FaultSettings.from_dict({**base, **given})
        except ValueError as exc:
            names = ", ".join(CLI_FLAGS.get(k, k) for k in sorted(given))
            raise ValueError(f"bad fault flags ({names}): {exc}") from None
    controller = controller_of(server.app)
    if server_settings is not None:
        controller.set(server_settings)
    for org, settings in per_org.items():
        controller.set(settings, org=org)
