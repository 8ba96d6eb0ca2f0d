"""A Braintrust-compatible API server on loopback, for tests, demos and rehearsals.

``from braintrust_migrate.sandbox import SandboxServer`` (imported lazily, so that
importing the package, e.g. for the pytest plugin, stays cheap).

Rooms, each importing only those above it (``tests/sandbox/test_layout.py`` checks there is no cycle):

- ``core/``: the SQLite store, the OpenAPI spec, the reference table, the request context, ``SandboxState``;
- ``objects/``: object models, CRUD and special handlers, ``/function`` pushes, org provisioning;
- ``events/``: the event store, insert validation, attachments, event handlers, the SDK's logs3 paths;
- ``btql/``: parse, the JSON form, execute over the event store;
- ``faults/``: fault settings, controller, middleware, wiring;
- ``http/``: the Starlette app, route tables, guard, version, 501 endpoints;
- ``seed/``: the seed generator (plan, events, HTTP writer, ``sandbox seed``);
- ``server.py`` (the server thread), ``cli.py`` (``sandbox`` sub-command), ``testing.py`` (pytest fixtures).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SandboxOrg", "SandboxServer", "Store", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "SandboxServer":
        from braintrust_migrate.sandbox.server import SandboxServer

        return SandboxServer
    if name == "SandboxOrg":
        from braintrust_migrate.sandbox.objects.admin import SandboxOrg

        return SandboxOrg
    if name == "Store":
        from braintrust_migrate.sandbox.core.store import Store

        return Store
    if name == "create_app":
        from braintrust_migrate.sandbox.http.app import create_app

        return create_app
    raise AttributeError(name)
