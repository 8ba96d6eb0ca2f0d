"""The API key as an httpx.Auth: a Bearer header sent only to the API's own origin."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from braintrust_migrate.client.redirects import origin
from braintrust_migrate.redact import register_secret

# Marks a request (and, as httpx copies extensions, every redirect hop of it) as authenticated.
AUTHENTICATED = "braintrust_migrate.authenticated"


class ApiKeyAuth(httpx.Auth):
    """httpx applies an Auth to the first request only and copies its headers to redirect hops,
    stripping Authorization on a change of origin except an http->https upgrade. `scope`, a
    request hook, keeps the rule strict for every hop: the key goes to the API origin, never elsewhere,
    and again to the API origin should a redirect come back to it."""

    def __init__(self, api_key: str, base_url: str) -> None:
        register_secret(api_key)
        self._header = f"Bearer {api_key}"
        self._origin = origin(base_url)

    def __repr__(self) -> str:
        return f"ApiKeyAuth(origin={self._origin!r})"

    __str__ = __repr__

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.extensions = {**request.extensions, AUTHENTICATED: True}
        self.scope(request)
        yield request

    def scope(self, request: httpx.Request) -> None:
        """Set or strip the header of one hop by its origin (a no-op for unauthenticated requests)."""
        if not request.extensions.get(AUTHENTICATED):
            return
        if origin(request.url) == self._origin:
            request.headers["Authorization"] = self._header
        else:
            request.headers.pop("Authorization", None)

    async def ascope(self, request: httpx.Request) -> None:
        self.scope(request)
