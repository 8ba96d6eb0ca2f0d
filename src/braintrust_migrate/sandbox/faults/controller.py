"""The fault controller: settings per scope (server, org), token buckets, deterministic draws."""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from braintrust_migrate.sandbox.core.store import Store
from braintrust_migrate.sandbox.faults.settings import FaultSettings, FaultStats, stats_of

_DRAWS_PER_REQUEST = 7


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
class Plan:
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
                return stats_of(Counter(self._stats.get(label, Counter())))
            total: Counter[str] = Counter()
            for counter in self._stats.values():
                total.update(counter)
            return stats_of(total)

    def describe(self) -> dict[str, Any]:
        """The admin API's view: settings per scope and the counters."""
        with self._lock:
            server = self._server.settings.to_dict() if self._server else None
            orgs = {s.name or s.label: s.settings.to_dict() for s in self._orgs.values()}
            names = {s.label: f"org:{s.name}" for s in self._orgs.values()}
            by_scope = {
                names.get(label, label): stats_of(Counter(c)).as_dict() for label, c in self._stats.items()
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

    def begin(self, scope: _Scope, key: str) -> Plan:
        """Admission of one request: draw its random values, apply the rate limits."""
        s = scope.settings
        with self._lock:
            draws = _Draws(*(scope.rng.random() for _ in range(_DRAWS_PER_REQUEST)))
            plan = Plan(scope, key, draws)
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

    def end(self, plan: Plan) -> None:
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
