"""The routing of every data-plane endpoint: event insert / fetch / feedback / summarize
(:mod:`braintrust_migrate.sandbox.events.api`), ``/btql`` and the SDK's ``/logs3`` paths.

Handlers run through :meth:`SandboxState.dispatch` like the object endpoints.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from braintrust_migrate.sandbox.btql import execute as btql
from braintrust_migrate.sandbox.core.common import Request
from braintrust_migrate.sandbox.events import logs3 as sdk_api
from braintrust_migrate.sandbox.events.api import (
    cross_insert,
    feedback,
    fetch_get,
    fetch_post,
    insert,
    summarize_dataset,
    summarize_experiment,
)
from braintrust_migrate.sandbox.events.store import (
    KINDS,
    Kind,
    install,
)

if TYPE_CHECKING:
    from braintrust_migrate.sandbox.core.state import SandboxState

Handler = Callable[..., Any]


# --- routing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One route's handler and how to call it."""

    fn: Handler
    kind: Kind | None = None  # passed as ``kind=``
    read_only: bool = False  # a POST that writes nothing: not counted as a write request
    base_url: bool = False  # passed ``base_url=``: the server's own URL, for links it returns

    def bind(self, base_url: str) -> Handler:
        kwargs: dict[str, Any] = {}
        if self.kind is not None:
            kwargs["kind"] = self.kind
        if self.base_url:
            kwargs["base_url"] = base_url
        bound = functools.partial(self.fn, **kwargs)
        bound.read_only = self.read_only  # type: ignore[attr-defined]  # read by SandboxState.dispatch
        return bound


def route_table() -> dict[str, dict[str, Op]]:
    table: dict[str, dict[str, Op]] = {}
    for kind in KINDS.values():
        base = f"/v1/{kind.name}/{{{kind.id_field}}}"
        table[f"{base}/insert"] = {"POST": Op(insert, kind)}
        table[f"{base}/fetch"] = {"POST": Op(fetch_post, kind, read_only=True), "GET": Op(fetch_get, kind)}
        table[f"{base}/feedback"] = {"POST": Op(feedback, kind)}
    table["/v1/experiment/{experiment_id}/summarize"] = {"GET": Op(summarize_experiment, base_url=True)}
    table["/v1/dataset/{dataset_id}/summarize"] = {"GET": Op(summarize_dataset, base_url=True)}
    table["/v1/insert"] = {"POST": Op(cross_insert)}
    table["/btql"] = {"POST": Op(btql.btql, read_only=True)}
    table["/api/apikey/login"] = {"POST": Op(sdk_api.login, read_only=True, base_url=True)}
    table["/api/project/register"] = {"POST": Op(sdk_api.register_project)}
    table["/api/experiment/register"] = {"POST": Op(sdk_api.register_experiment)}
    table["/api/dataset/register"] = {"POST": Op(sdk_api.register_dataset)}
    table["/api/project"] = {"GET": Op(sdk_api.get_project)}
    table["/logs3"] = {"POST": Op(sdk_api.logs3)}
    table["/logs3/overflow"] = {"POST": Op(sdk_api.logs3_overflow, base_url=True)}
    return table


def _endpoint(state: SandboxState, path: str, by_method: dict[str, Op]) -> Callable[..., Any]:
    async def endpoint(request: HttpRequest) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        handler = by_method[method].bind(str(request.base_url).rstrip("/"))
        req = await Request.read(request, path, method)
        return await run_in_threadpool(state.dispatch, handler, req)

    return endpoint


def routes(state: SandboxState) -> list[BaseRoute]:
    """Every data-plane route, bound to ``state`` (creates the event tables)."""
    install(state.store)
    out: list[BaseRoute] = [
        Route(path, _endpoint(state, path, by_method), methods=list(by_method))
        for path, by_method in route_table().items()
    ]
    out += sdk_api.unauthenticated_routes(state)
    return out
