"""Fault settings (what to inject, validated) and the counters of what was injected."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

RETRY_AFTER_FORMATS = ("seconds", "http-date", "random")
DROP_PHASES = ("before", "after", "random")
ERROR_BODIES = ("json", "text", "random")
ERROR_STATUSES = (500, 502, 503, 504)
BTQL_PATH = "/btql"
BTQL_DEFAULT_LIMIT = 1000
_NEVER_FAULTED_PREFIX = "/_sandbox"


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


def stats_of(counter: Counter[str]) -> FaultStats:
    by_status = {int(k.split(":", 1)[1]): v for k, v in counter.items() if k.startswith("status:")}
    plain = {
        f.name: counter.get(f.name, 0) for f in fields(FaultStats) if f.name != "server_errors_by_status"
    }
    return FaultStats(**plain, server_errors_by_status=by_status)
