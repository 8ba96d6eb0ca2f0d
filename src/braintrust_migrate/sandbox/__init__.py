"""A Braintrust-compatible API server on loopback, for tests, demos and rehearsals.

``from braintrust_migrate.sandbox import SandboxServer`` (imported lazily, so that
importing the package, e.g. for the pytest plugin, stays cheap).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SandboxOrg", "SandboxServer", "Store", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "SandboxServer":
        from braintrust_migrate.sandbox.server import SandboxServer

        return SandboxServer
    if name == "SandboxOrg":
        from braintrust_migrate.sandbox.admin import SandboxOrg

        return SandboxOrg
    if name == "Store":
        from braintrust_migrate.sandbox.store import Store

        return Store
    if name == "create_app":
        from braintrust_migrate.sandbox.app import create_app

        return create_app
    raise AttributeError(name)
