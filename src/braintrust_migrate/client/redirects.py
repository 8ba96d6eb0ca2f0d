"""Which redirects the client follows, and how. httpx follows them; `RedirectLayer`, a transport
wrapper, vets each redirect answer first (httpx cannot express these rules):

- 303, and 301/302 after a POST, become a GET without a body (as browsers and httpx do).
- Any other redirect keeps its method and body, and is followed only within the API's own
  origin: a request body (rows, BTQL, secrets) never goes to another origin.
- Never from https to http; never to plain http on a non-loopback host unless allowed.
- At most MAX_REDIRECTS in a row. A redirect's body is never read.
- Blob downloads: each target is vetted by the caller's `check` (SSRF guard) instead; without
  one a redirect is not followed.
Credentials are kept to the API origin by `auth.ApiKeyAuth`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from braintrust_migrate.client.errors import display_url
from braintrust_migrate.config import is_loopback_host

Origin = tuple[str, str, int | None]
Check = Callable[[str], Awaitable[None]]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
# Where httpx finds a request's Rules; it copies extensions to every redirect hop.
RULES = "braintrust_migrate.redirects"
# Dropped with the body of a redirect answer (and its Location, replaced by the vetted one).
_BODY_HEADERS = frozenset({"location", "content-length", "content-encoding", "transfer-encoding"})


class Refused(Exception):
    """The message is the reason the redirect is not followed; `url` answered it with `status`."""

    def __init__(self, reason: str, url: str = "", status: int = 0) -> None:
        super().__init__(reason)
        self.url, self.status = url, status


class NotFollowed(Refused):
    """A blob download redirected without a check, or too often."""


@dataclass(frozen=True)
class Hop:
    url: str
    method: str
    keep_body: bool


def origin(url: str | httpx.URL) -> Origin:
    parts = urlsplit(str(url))
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def resolve(current: str, location: str) -> str:
    """The absolute http(s) URL a Location names, or Refused."""
    shown = display_url(location.strip())[:200]
    try:
        target = urljoin(current, location.strip())
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises ValueError for a bad port
        httpx.URL(target)
    except (ValueError, httpx.InvalidURL):
        raise Refused(f"its Location {shown!r} is not a usable URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"its Location {shown!r} is not an http(s) URL")
    return target


def next_hop(
    *,
    status: int,
    current: str,
    location: str,
    method: str,
    own_origin: Origin,
    allow_insecure_http: bool,
) -> Hop:
    """Where and how to send the request next, or Refused."""
    target = resolve(current, location)
    scheme, host, _ = origin(target)
    if scheme == "http" and urlsplit(current).scheme == "https":
        raise Refused(f"it downgrades https to http ({display_url(target)})")
    if scheme == "http" and not allow_insecure_http and not is_loopback_host(host):
        raise Refused(
            f"it leads to plain http on a non-loopback host ({display_url(target)}); "
            "set BT_ALLOW_INSECURE_HTTP=true to allow that"
        )
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return Hop(target, "GET", keep_body=False)
    if method not in ("GET", "HEAD") and origin(target) != own_origin:
        raise Refused(
            f"it would resend the {method} request and its body to another origin ({display_url(target)})"
        )
    return Hop(target, method, keep_body=True)


@dataclass
class Rules:
    """One request's redirect rules, and how many redirects it has followed."""

    own_origin: Origin
    allow_insecure_http: bool = False
    blob: bool = False
    check: Check | None = None
    followed: int = 0

    async def next_hop(self, status: int, current: str, location: str, method: str) -> Hop:
        if self.blob:
            if self.check is None or self.followed == MAX_REDIRECTS:
                raise NotFollowed(f"blob download redirected ({status}); not followed")
            target = resolve(current, location)
            await self.check(target)
            hop = Hop(target, method, keep_body=True)
        else:
            hop = next_hop(
                status=status,
                current=current,
                location=location,
                method=method,
                own_origin=self.own_origin,
                allow_insecure_http=self.allow_insecure_http,
            )
            if self.followed == MAX_REDIRECTS:
                raise Refused(f"more than {MAX_REDIRECTS} redirects in a row", hop.url, status)
        self.followed += 1
        return hop


class RedirectLayer(httpx.AsyncBaseTransport):
    """Vets every redirect answer by its request's Rules, then hands httpx a clean one to follow:
    an absolute Location, and 307 (keep method and body) or 303 (become a GET) as the rules decided."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        rules = request.extensions.get(RULES)
        if isinstance(rules, Rules) and rules.followed:
            # httpx hands a hop its body as a stream, which the aiohttp transport would send chunked
            # (even an empty GET's): as bytes it goes as the first request did.
            await request.aread()
            if request.method == "GET":
                request.headers.pop("Content-Type", None)  # a redirect made it a GET without a body
        response = await self._inner.handle_async_request(request)
        location = response.headers.get("location")
        if response.status_code not in REDIRECT_STATUSES or location is None:
            return response
        if not isinstance(rules, Rules) or (rules.blob and not location):
            # Not to be followed (a signed upload; a blob's empty Location): the answer as it is,
            # without the Location, which httpx would otherwise parse (and fail on) regardless.
            del response.headers["location"]
            return response
        await response.aclose()  # never read: it could be as large as the server likes
        status, current = response.status_code, str(request.url)
        try:
            hop = await rules.next_hop(status, current, location, request.method)
        except Refused as refused:
            refused.url = refused.url or current
            refused.status = status
            raise
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
        return httpx.Response(
            307 if hop.method == request.method else 303,
            headers=[*headers, ("location", str(httpx.URL(hop.url)))],  # percent-encoded, as httpx sends it
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
