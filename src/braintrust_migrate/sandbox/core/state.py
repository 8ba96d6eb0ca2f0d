"""What every request shares: the store, the admin key, settings, and the dispatch of a handler.

It lives apart from the HTTP app so that the route modules (events, logs3, unsupported) can name it
without importing the app that imports them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.responses import Response

from braintrust_migrate.sandbox.core import permissions
from braintrust_migrate.sandbox.core.common import ApiError, Ctx, Request
from braintrust_migrate.sandbox.core.store import KeyInfo, Store, Tx

# The logger keeps the app's name: log filters and readers know it by that name.
log = logging.getLogger("braintrust_migrate.sandbox.http.app")

Handler = Callable[[Ctx], Any]
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def json_response(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


class SandboxState:
    """What every request needs: the store and the admin key (later parts hang settings here)."""

    def __init__(self, store: Store, admin_key: str | None) -> None:
        self.store = store
        self.admin_key = admin_key
        self.settings: dict[str, Any] = {}
        # Write requests (POST/PUT/PATCH/DELETE) that authenticated, per API key, whatever
        # their outcome: lets tests assert that a re-run or a dry run writes nothing.
        self._writes: Counter[str] = Counter()
        self._writes_lock = threading.Lock()

    def write_count(self, api_key: str) -> int:
        with self._writes_lock:
            return self._writes[api_key]

    def authenticate(self, tx: Tx, authorization: str | None) -> KeyInfo:
        if not authorization:
            raise ApiError(401, "Missing Authorization header: pass 'Authorization: Bearer <API key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Malformed Authorization header: expected 'Bearer <API key>'")
        info = tx.key_info(token.strip())
        if info is None:
            raise ApiError(401, "Invalid API key")
        return info

    def dispatch(self, handler: Handler, req: Request) -> Response:
        try:
            with self.store.transaction() as tx:
                caller = self.authenticate(tx, req.authorization)
                writing = req.method in _WRITE_METHODS and not getattr(handler, "read_only", False)
                if writing:
                    with self._writes_lock:
                        self._writes[caller.key] += 1
                with permissions.acting(tx, caller, writing=writing):
                    result = handler(Ctx(tx, caller, req))
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        except Exception:
            log.exception("sandbox: unhandled error in %s %s", req.method, req.spec_path)
            return error_response(500, "Internal sandbox error (this is a bug in the sandbox)")
        return result if isinstance(result, Response) else json_response(result)
