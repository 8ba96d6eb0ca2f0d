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

# The public names, importable as ``braintrust_migrate.sandbox.faults.X`` (tests, docs, the CLI).
# Submodules import each other directly, never this package, so the graph stays acyclic.
from braintrust_migrate.sandbox.faults.controller import FaultController, controller_of
from braintrust_migrate.sandbox.faults.middleware import FaultMiddleware
from braintrust_migrate.sandbox.faults.settings import ConnectionDropped, FaultSettings, FaultStats
from braintrust_migrate.sandbox.faults.wiring import (
    CLI_FLAGS,
    admin_routes,
    configure_from_cli,
    install,
    load_faults_file,
)

__all__ = [
    "CLI_FLAGS",
    "ConnectionDropped",
    "FaultController",
    "FaultMiddleware",
    "FaultSettings",
    "FaultStats",
    "admin_routes",
    "configure_from_cli",
    "controller_of",
    "install",
    "load_faults_file",
]
