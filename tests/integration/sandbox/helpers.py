"""Test utilities: an HTTP client that checks every response against the spec."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import httpx

from braintrust_migrate.sandbox.core import spec

ERROR_STATUSES = {400, 401, 403, 404, 405}


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """Spec path templates as regexes, literal segments first (list_org before {acl_id})."""
    out = []
    for path in spec.fixed_spec()["paths"]:
        pattern = (
            "^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        )
        out.append((re.compile(pattern), path))
    out.sort(key=lambda item: (item[1].count("{"), item[1]))
    return out


def spec_path_for(method: str, path: str) -> str | None:
    for pattern, template in _templates():
        if pattern.match(path) and method.lower() in spec.fixed_spec()["paths"][template]:
            return template
    return None


def response_errors(method: str, path: str, status: int, body: Any) -> list[str]:
    """Why a 200 response body does not match the spec's response schema ([] when it does)."""
    template = spec_path_for(method, path)
    if template is None:
        return [f"no spec operation for {method} {path}"]
    pointer = spec.response_pointer(template, method, status)
    if pointer is None:
        return [f"spec declares no JSON {status} response for {method} {template}"]
    return spec.validate_pointer(pointer, body)


class Api:
    """A thin httpx wrapper bound to one API key; every response is checked.

    200 bodies must match the operation's response schema; errors must be JSON
    ``{"error": str}`` with a status the sandbox is allowed to use.
    """

    def __init__(self, base_url: str, key: str | None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=30)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        if response.status_code == 200:
            errors = response_errors(method, path, 200, response.json())
            assert not errors, f"{method} {path}: response outside the spec: {errors}"
        else:
            assert response.status_code in ERROR_STATUSES, (
                f"{method} {path}: {response.status_code} {response.text}"
            )
            body = response.json()
            assert isinstance(body, dict) and isinstance(body.get("error"), str), response.text
        return response

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def fails(self, status: int, method: str, path: str, **kwargs: Any) -> str:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (
            f"{method} {path}: expected {status}, got {response.status_code} {response.text}"
        )
        return response.json()["error"]

    # shorthands returning parsed JSON of a 200
    def get(self, path: str, **params: Any) -> Any:
        return self.ok("GET", path, params=params or None)

    def post(self, path: str, body: Any) -> Any:
        return self.ok("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.ok("PUT", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.ok("PATCH", path, json=body)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.ok("DELETE", path, json=body) if body is not None else self.ok("DELETE", path)

    def list(self, path: str, **params: Any) -> list[dict[str, Any]]:
        return self.get(path, **params)["objects"]

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
