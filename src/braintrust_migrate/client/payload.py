"""What a response body holds: JSON of the expected type, or a MalformedResponse saying why not."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from braintrust_migrate.client.errors import MalformedResponse

_TYPE_NAMES: dict[type, str] = {dict: "a JSON object", list: "a JSON array"}


def malformed(response: httpx.Response, side: str, reason: str) -> MalformedResponse:
    request = response.request
    return MalformedResponse(
        side=side,
        method=request.method,
        path=request.url.path,
        url=str(request.url),
        status=response.status_code,
        reason=reason,
    )


def decode(response: httpx.Response, side: str, expect: type | None = None) -> Any:
    """The JSON of the body (text if it is not JSON, None if empty); with `expect`, of that type."""
    content_type = response.headers.get("content-type", "json")
    if not response.content:
        payload: Any = None
    elif "json" not in content_type:
        payload = response.text
    else:
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise malformed(response, side, f"invalid JSON ({str(exc).split(':')[0]})") from None
    if expect is not None and not isinstance(payload, expect):
        wanted = _TYPE_NAMES.get(expect, expect.__name__)
        got = "an empty body" if payload is None else f"a {type(payload).__name__}"
        if isinstance(payload, str) and "json" not in content_type:
            got = f"{content_type!r} content"
        raise malformed(response, side, f"expected {wanted}, got {got}")
    return payload


def list_items(response: httpx.Response, side: str, path: str) -> list[Any]:
    """The items of a list answer, whatever they are: the caller picks the usable ones."""
    payload = decode(response, side)
    # /v1/acl/list_org answers with a bare array; every other list with {"objects": [...]}.
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("objects"), list):
        return payload["objects"]
    raise malformed(response, side, f"an unexpected list shape for {path}")
