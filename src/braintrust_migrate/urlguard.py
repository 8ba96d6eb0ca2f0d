"""Which URLs the tool may download from when a server hands it one (attachment blobs).

The source API says where to fetch each blob (``downloadUrl``, and any redirect after it).
A hostile or compromised source could point that at the machine running the migration or
its network (``http://169.254.169.254/latest/meta-data/...``, an internal service) and have
the answer copied into the destination org. So every URL, and every redirect hop, must be:

- on the source API's own origin (scheme, host, port): allowed as is; or
- https, on a host whose every address is public: not loopback, private, link-local (the
  cloud metadata service), shared (CGNAT), multicast, reserved or unspecified, the IPv6
  equivalents included, and IPv4 addresses embedded in IPv6 (mapped, 6to4, Teredo, NAT64)
  judged as the IPv4 address they carry.

When the source API itself is on loopback (the local sandbox), loopback addresses and plain
http are allowed too: nothing is reachable that the source could not already reach.

Left open: the host is resolved here and again when connecting, so a name whose DNS answer
changes between the two (rebinding) is not caught; a blob host would have to be that name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DownloadRefused(Exception):
    """A download URL the rules above do not allow; the message says which rule."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"download URL {_shown(url)} refused: {reason}")
        self.reason = reason


def _shown(url: str) -> str:
    # A signed URL's query is a credential for that blob: show where, never the signature.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else "(not a URL)"


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return (
        parts.scheme.lower(),
        (parts.hostname or "").lower(),
        port or {"http": 80, "https": 443}.get(parts.scheme.lower()),
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: Address) -> str | None:
    """Why an address is not public (None: it is)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return classify(embedded)
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address (cloud metadata service)"
    if address.is_multicast:
        return "multicast address"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_private:
        return "private address"
    if address.is_reserved or not address.is_global:
        return "reserved address"
    return None


class DownloadGuard:
    """Checks download URLs against the source API's origin (see the module docstring)."""

    def __init__(self, api_url: str, resolve: Resolver | None = None) -> None:
        self.api_url = api_url
        self.origin = _origin(api_url)
        self._resolve = resolve
        self._api_on_loopback: bool | None = None

    async def _addresses(self, host: str, port: int) -> list[Address]:
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return [literal]
        try:
            found = await (self._resolve or system_resolver)(host, port)
        except OSError:
            found = []
        out: list[Address] = []
        for raw in found:
            try:
                out.append(ipaddress.ip_address(raw.split("%", 1)[0]))  # drop an IPv6 zone
            except ValueError:
                continue
        return out

    async def api_on_loopback(self) -> bool:
        if self._api_on_loopback is None:
            _, host, port = self.origin
            addresses = await self._addresses(host, port or 0) if host else []
            self._api_on_loopback = bool(addresses) and all(
                classify(a) == "loopback address" for a in addresses
            )
        return self._api_on_loopback

    async def check(self, url: str) -> None:
        """Return if `url` may be fetched; raise DownloadRefused saying why not."""
        scheme, host, port = _origin(url)
        if scheme not in ("http", "https") or not host or port == -1:
            raise DownloadRefused(url, "not an http(s) URL")
        if (scheme, host, port) == self.origin:
            return
        local = await self.api_on_loopback()
        addresses = await self._addresses(host, port or 0)
        if not addresses:
            raise DownloadRefused(url, f"host {host} does not resolve")
        for address in addresses:
            reason = classify(address)
            if reason is not None and not (local and reason == "loopback address"):
                raise DownloadRefused(url, f"{reason} {address}")
        if scheme != "https" and not (local and self.origin[0] == "http"):
            raise DownloadRefused(url, "plain http (https required)")
