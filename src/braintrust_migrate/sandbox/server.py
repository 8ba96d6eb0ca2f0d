"""Run the sandbox in a background thread: ``with SandboxServer() as server: ...``.

The listening socket is bound in :meth:`SandboxServer.start` itself, so a taken
port fails right there (``OSError``) and ``port=0`` picks a free port whose URL
is known as soon as ``start`` returns.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import uvicorn
from starlette.routing import BaseRoute

from braintrust_migrate.sandbox import faults
from braintrust_migrate.sandbox.core.store import Store
from braintrust_migrate.sandbox.http.app import create_app
from braintrust_migrate.sandbox.http.guard import DEFAULT_MAX_BODY_BYTES
from braintrust_migrate.sandbox.objects import admin
from braintrust_migrate.sandbox.objects.admin import SandboxOrg


class SandboxServer:
    """A Braintrust-compatible API server on loopback.

    ``db`` is an SQLite file path or ``":memory:"``. ``admin_key`` guards the
    ``/_sandbox`` admin API (a random one is generated when omitted).
    ``extra_routes`` are mounted before the object routes (for later extensions).
    ``allowed_hosts`` are ``Host`` names answered besides loopback ones, IP addresses and
    ``host`` (``"*"``: any); ``max_body_bytes`` is the request-size cap (413 above it).
    """

    def __init__(
        self,
        db: str = ":memory:",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_key: str | None = None,
        log_level: str = "warning",
        extra_routes: Sequence[BaseRoute] = (),
        allowed_hosts: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.store = Store(db)
        self.host = host
        self.port = port
        self.admin_key = admin_key or admin.new_admin_key()
        self.app = create_app(
            self.store,
            admin_key=self.admin_key,
            extra_routes=extra_routes,
            bind_host=host,
            allowed_hosts=allowed_hosts,
            max_body_bytes=max_body_bytes,
        )
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the sandbox server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (no 40 ms Nagle stalls).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level=self._log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="braintrust-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the sandbox server failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("the sandbox server did not start in time")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def close(self) -> None:
        """Stop and close the database."""
        self.stop()
        self.store.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- provisioning -------------------------------------------------------------------------

    def create_org(
        self,
        name: str,
        api_key: str | None = None,
        users: Sequence[str] | None = None,
        *,
        builtins: bool = True,
    ) -> SandboxOrg:
        """A new org with its members (emails; default: 3 deterministic users), groups and API key."""
        return admin.create_org(self.store, name, api_key, users, builtins=builtins)

    def create_key(
        self,
        org_name: str,
        role: str | None = None,
        grants: Sequence[dict[str, Any]] | None = None,
        *,
        api_key: str | None = None,
    ) -> str:
        """A restricted key for a new member of ``org_name``: ``role`` owner/engineer/viewer and/or
        ``grants`` ``[{"object_type", "object_id", "permissions": [...], "restrict_object_type"}]``."""
        return admin.create_key(self.store, org_name, role=role, grants=grants, api_key=api_key).api_key

    def grant_org(self, api_key: str, org_name: str) -> None:
        """Let an existing key act in another org too (it must then pass ``org_name`` on creates)."""
        admin.grant_org(self.store, api_key, org_name)

    def orgs(self) -> list[SandboxOrg]:
        return admin.list_orgs(self.store)

    def write_count(self, api_key: str) -> int:
        """How many write requests (POST/PUT/PATCH/DELETE, any outcome) this key has made."""
        return self.app.state.sandbox.write_count(api_key)

    # --- fault injection (see faults/) ------------------------------------------------------------

    def set_faults(self, settings: faults.FaultSettings | None, org: str | None = None) -> None:
        """Inject faults server-wide (``org=None``) or for one org's keys (by name); None clears."""
        faults.controller_of(self.app).set(settings, org)

    def clear_faults(self) -> None:
        """Remove every fault setting (server-wide and per org) and reset the counters."""
        faults.controller_of(self.app).clear()

    def fault_stats(self, org: str | None = None) -> faults.FaultStats:
        """What was injected: totals, or one org's scope."""
        return faults.controller_of(self.app).stats(org)
