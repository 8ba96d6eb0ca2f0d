"""Which redirects the client follows, and how (it follows them by hand, to keep these rules).

- 303, and 301/302 after a POST, become a GET without a body (as browsers and httpx do).
- Any other redirect keeps its method and body, and is followed only within the API's own
  origin: a request body (rows, BTQL, secrets) never goes to another origin.
- Never from https to http; never to plain http on a non-loopback host unless allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from braintrust_migrate.client.errors import display_url
from braintrust_migrate.config import is_loopback_host

Origin = tuple[str, str, int | None]


class Refused(Exception):
    """The message is the reason the redirect is not followed."""


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
