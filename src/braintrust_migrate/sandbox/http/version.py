"""``GET /version``: server info, as the data plane serves it to the SDKs.

The official SDKs read one field: ``logs3_payload_max_bytes``. When it is a positive
number they cap each ``POST /logs3`` body at that size and send larger rows through
``POST /logs3/overflow``. The sandbox advertises it exactly when a maximum request size
(:attr:`FaultSettings.max_request_bytes`, the 413 limit) applies to ``POST /logs3`` for
the caller: the server-wide settings, or those of the calling key's org when it has its
own. No API key is needed; a valid one selects its org's settings.

The other fields name the sandbox; they are not the hosted server's.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from braintrust_migrate import __version__

LOGS3_PATH = "/logs3"


def routes(state: Any) -> list[BaseRoute]:
    async def version(request: HttpRequest) -> Response:
        info: dict[str, Any] = {
            "version": __version__,
            "server": "braintrust-migrate-sandbox",
            "sandbox": True,
        }
        controller = state.settings.get("faults")
        if controller is not None and controller.active:
            scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" and token.strip() else None
            scope = await controller.scope_for(key)
            settings = scope.settings if scope is not None else None
            if (
                settings is not None
                and settings.max_request_bytes is not None
                and settings.applies("POST", LOGS3_PATH)
            ):
                info["logs3_payload_max_bytes"] = settings.max_request_bytes
        return Response(orjson.dumps(info), media_type="application/json")

    return [Route("/version", version, methods=["GET"])]
