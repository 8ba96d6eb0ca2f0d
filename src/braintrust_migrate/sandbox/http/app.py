"""The sandbox's Starlette application: routing, auth, errors, the admin API.

Every object route comes from :data:`objects.TYPES` and the spec (a route exists
exactly when the spec defines the operation). Each request is handled off the
event loop, inside one store transaction: authenticate, validate, act, commit.

Errors are JSON ``{"error": "<message naming the field>"}`` with 400 (bad input,
including malformed JSON and bad uuids), 401 (missing / unknown key), 403 (no
access), 404 (unknown id or path), 405 (method not defined by the spec), 413 (body above
the cap), 421 (unknown ``Host``; see http/guard.py) and 501 (needs an LLM runtime; see
http/unsupported.py); a 500 means a sandbox bug.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from braintrust_migrate.sandbox import faults
from braintrust_migrate.sandbox.core import permissions
from braintrust_migrate.sandbox.core.common import Request
from braintrust_migrate.sandbox.core.state import Handler, SandboxState, error_response, json_response
from braintrust_migrate.sandbox.core.store import Store
from braintrust_migrate.sandbox.events import attachments
from braintrust_migrate.sandbox.http import event_routes as events_api
from braintrust_migrate.sandbox.http import unsupported, version
from braintrust_migrate.sandbox.http.guard import (
    DEFAULT_MAX_BODY_BYTES,
    GuardMiddleware,
    GuardSettings,
    parse_hosts,
)
from braintrust_migrate.sandbox.objects import admin, handlers, special
from braintrust_migrate.sandbox.objects.functions_push import insert_functions
from braintrust_migrate.sandbox.objects.model import TYPES, ObjectType

ADMIN_HEADER = "x-sandbox-admin-key"


# --- route table --------------------------------------------------------------------------------


def route_table() -> dict[str, dict[str, Handler]]:
    """Spec path template -> HTTP method -> handler. Specific paths come first."""
    table: dict[str, dict[str, Handler]] = {}

    def add(path: str, method: str, fn: Handler) -> None:
        table.setdefault(path, {})[method] = fn

    add("/v1/acl/list_org", "GET", special.acl_list_org)
    add("/v1/acl/batch_update", "POST", special.acl_batch_update)
    add("/v1/organization/members", "PATCH", special.patch_org_members)
    add("/v1/acl", "DELETE", special.acl_delete_by_body)
    add("/v1/ai_secret", "DELETE", special.ai_secret_delete_by_body)
    add("/v1/service_token", "DELETE", special.service_token_delete_by_body)
    for t in TYPES.values():
        _add_type(add, t)
    return table


def _add_type(add: Callable[[str, str, Handler], None], t: ObjectType) -> None:
    if t.has("list"):
        add(t.base, "GET", lambda ctx: handlers.list_objects(ctx, t))
    if t.has("create"):
        add(t.base, "POST", lambda ctx: handlers.create(ctx, t))
    if t.has("put"):
        add(t.base, "PUT", lambda ctx: handlers.create(ctx, t, put=True))
    if t.has("get"):
        add(t.item_path, "GET", lambda ctx: handlers.get(ctx, t))
    if t.has("patch"):
        add(t.item_path, "PATCH", lambda ctx: handlers.patch(ctx, t))
    if t.has("delete"):
        add(t.item_path, "DELETE", lambda ctx: handlers.delete(ctx, t))


async def _client_gone(request: HttpRequest, exc: Exception) -> Response:
    # The client hung up while sending its body (a killed migration): nobody reads an answer, and
    # it is no server error to log.
    return Response(status_code=499)


def _endpoint(state: SandboxState, spec_path: str, by_method: dict[str, Handler]) -> Callable[..., Any]:
    async def endpoint(request: HttpRequest) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        req = await Request.read(request, spec_path, method)
        return await run_in_threadpool(state.dispatch, by_method[method], req)

    return endpoint


# --- admin API ----------------------------------------------------------------------------------


def _admin_routes(state: SandboxState) -> list[BaseRoute]:
    def guarded(fn: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
        async def endpoint(request: HttpRequest) -> Response:
            if state.admin_key is None:
                return error_response(404, "The sandbox admin API is disabled (no admin key configured)")
            given = request.headers.get(ADMIN_HEADER, "")
            if not secrets.compare_digest(given.encode(), state.admin_key.encode()):
                return error_response(401, f"Missing or wrong {ADMIN_HEADER} header")
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                return error_response(400, "Malformed JSON body")
            if not isinstance(body, dict):
                return error_response(400, "Expected a JSON object")
            try:
                return json_response(await run_in_threadpool(fn, body))
            except (ValueError, TypeError, KeyError) as exc:
                return error_response(400, str(exc))

        return endpoint

    def create_org(body: dict[str, Any]) -> dict[str, Any]:
        users = body.get("users")
        if users is not None and not (isinstance(users, list) and all(isinstance(u, str) for u in users)):
            raise ValueError("users must be a list of emails")
        org = admin.create_org(
            state.store,
            str(body["name"]),
            body.get("api_key"),
            users,
            builtins=bool(body.get("builtins", True)),
        )
        return admin.org_json(org)

    def grant(body: dict[str, Any]) -> dict[str, Any]:
        admin.grant_org(state.store, str(body["api_key"]), str(body["org_name"]))
        return {"status": "ok"}

    def create_key(body: dict[str, Any]) -> dict[str, Any]:
        grants = body.get("grants")
        if grants is not None and not isinstance(grants, list):
            raise ValueError("grants must be a list of {object_type, object_id, permissions}")
        made = admin.create_key(
            state.store,
            str(body["org_name"]),
            role=body.get("role"),
            grants=grants,
            api_key=body.get("api_key"),
            email=body.get("email"),
        )
        return dataclasses.asdict(made)

    def orgs(_: dict[str, Any]) -> list[dict[str, Any]]:
        return [admin.org_json(o) for o in admin.list_orgs(state.store)]

    def writes(body: dict[str, Any]) -> dict[str, Any]:
        return {"api_key": body["api_key"], "writes": state.write_count(str(body["api_key"]))}

    async def health(_: HttpRequest) -> Response:
        return json_response({"status": "ok"})

    return [
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/orgs", guarded(orgs), methods=["GET"]),
        Route("/_sandbox/orgs", guarded(create_org), methods=["POST"]),
        Route("/_sandbox/grants", guarded(grant), methods=["POST"]),
        Route("/_sandbox/keys", guarded(create_key), methods=["POST"]),
        Route("/_sandbox/writes", guarded(writes), methods=["POST"]),
        *faults.admin_routes(state, guarded),
    ]


# --- app ----------------------------------------------------------------------------------------

# Keys travel in the Authorization header, never in cookies, so no credentials mode is needed;
# "*" together with Allow-Credentials is also refused by browsers.
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "86400",
}


class _Preflight:
    """The spec's CORS ``OPTIONS`` on every ``/v1`` path: no auth, 200 with Access-Control headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS" and scope["path"].startswith("/v1"):
            await Response(status_code=200, headers=_CORS_HEADERS)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _index(_: HttpRequest) -> Response:
    return PlainTextResponse("Hello, World!")


async def _http_error(_: HttpRequest, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, exc.detail)
    return json_response({"error": message}, exc.status_code, headers=exc.headers)


def create_app(
    store: Store,
    *,
    admin_key: str | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    bind_host: str = "127.0.0.1",
    allowed_hosts: Iterable[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """The sandbox ASGI app over ``store``. ``extra_routes`` come before the object routes.

    ``bind_host`` and ``allowed_hosts`` (``"*"``: any) decide which ``Host`` headers are
    answered; ``max_body_bytes`` is the hard request-size cap (413 above it).
    """
    state = SandboxState(store, admin_key)
    state.settings["guard"] = GuardSettings(bind_host, parse_hosts(allowed_hosts), max_body_bytes)
    fault_controller = faults.install(state)
    attachment_service = attachments.install(state)
    store.add_schema(permissions.SCHEMA)
    with store.transaction() as tx:
        admin.ensure_system_roles(tx)
    routes: list[BaseRoute] = [Route("/v1", _index, methods=["GET"]), *extra_routes, *_admin_routes(state)]
    routes += [*version.routes(state), *attachment_service.routes(), *events_api.routes(state)]
    routes += unsupported.routes(state)  # /ping, and 501 for what needs an LLM runtime
    for path, by_method in route_table().items():
        routes.append(Route(path, _endpoint(state, path, by_method), methods=list(by_method)))
    # Not a spec path: the SDK's publish() / `braintrust push` (functions_push.py).
    push = _endpoint(state, "/insert-functions", {"POST": insert_functions})
    routes.append(Route("/insert-functions", push, methods=["POST"]))
    app = Starlette(
        routes=routes, exception_handlers={HTTPException: _http_error, ClientDisconnect: _client_gone}
    )
    app.state.sandbox = state
    app.add_middleware(faults.FaultMiddleware, controller=fault_controller)
    app.add_middleware(_Preflight)
    app.add_middleware(GuardMiddleware, state=state)
    return app
