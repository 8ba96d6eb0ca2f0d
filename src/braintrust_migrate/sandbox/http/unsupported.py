"""``GET /ping`` and the endpoints the sandbox deliberately cannot serve.

``/ping`` is what the official SDK's ``HTTPConnection.ping()`` and ``logger.user_info()``
call (``GET <api_url>/ping``); the SDKs read the caller's user ``id`` from it, so the
sandbox answers the key owner's user object.

Running functions needs an LLM runtime (and code sandboxes), which the sandbox has not:
``POST /function/invoke`` (``braintrust.invoke``), ``POST /v1/function/{id}/invoke`` and
``POST /v1/eval`` answer 501 with an error that says so, after the usual authentication
(and, for an id in the path, the usual 404 for a function the caller cannot see), so a
client can tell them from a wrong URL (404) or a bad request (400).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from braintrust_migrate.sandbox.core.common import ApiError, Ctx, Request, visible

if TYPE_CHECKING:
    from braintrust_migrate.sandbox.core.state import SandboxState

NOT_IMPLEMENTED = 501
NO_RUNTIME = (
    "{what} is not supported by the sandbox: it has no LLM runtime and cannot run functions "
    "(prompts, tools, scorers, code); only their definitions are stored"
)


def ping(ctx: Ctx) -> dict[str, Any]:
    row = ctx.tx.get(ctx.caller.user_id, ["user"])
    if row is None:  # a key always has a user; keep the answer honest anyway
        return {"id": ctx.caller.user_id}
    return row.body


def _no_runtime(what: str, function_in_path: bool = False) -> Callable[[Ctx], Any]:
    def handler(ctx: Ctx) -> Any:
        if function_in_path:
            visible(ctx, ("function",), ctx.path_id(), label="function")
        raise ApiError(NOT_IMPLEMENTED, NO_RUNTIME.format(what=what))

    handler.read_only = True  # type: ignore[attr-defined]  # nothing is written: no write count
    return handler


def routes(state: SandboxState) -> list[BaseRoute]:
    table: list[tuple[str, str, Callable[[Ctx], Any]]] = [
        ("/ping", "GET", ping),
        ("/function/invoke", "POST", _no_runtime("Invoking a function (POST /function/invoke)")),
        (
            "/v1/function/{function_id}/invoke",
            "POST",
            _no_runtime("Invoking a function (POST /v1/function/{id}/invoke)", function_in_path=True),
        ),
        ("/v1/eval", "POST", _no_runtime("Launching an eval (POST /v1/eval)")),
    ]
    return [Route(path, _endpoint(state, path, method, fn), methods=[method]) for path, method, fn in table]


def _endpoint(state: SandboxState, path: str, method: str, fn: Callable[[Ctx], Any]) -> Callable[..., Any]:
    async def endpoint(request: HttpRequest) -> Response:
        req = await Request.read(request, path, method)
        return await run_in_threadpool(state.dispatch, fn, req)

    return endpoint
