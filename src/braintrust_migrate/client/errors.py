"""Typed API errors that carry what a user needs to act on them, and never a secret."""

from __future__ import annotations

import httpx

from braintrust_migrate.redact import scrub

BODY_LIMIT = 500

SIDE_LABEL = {"source": "source", "dest": "destination"}
SIDE_VARS = {"source": ("BT_SOURCE_API_KEY", "BT_SOURCE_URL"), "dest": ("BT_DEST_API_KEY", "BT_DEST_URL")}


def trim(body: str, limit: int = BODY_LIMIT) -> str:
    body = scrub(body.strip())
    return body if len(body) <= limit else body[:limit] + "…"


OVERLOAD_STATUSES = frozenset({429, 503, 504})


class ApiError(Exception):
    """An HTTP exchange that did not succeed. `status` is None for network failures."""

    retry_after: float | None = None  # seconds a 429/503 asked to wait (Retry-After), for the retry policy

    def __init__(
        self,
        *,
        side: str,
        method: str,
        path: str,
        status: int | None,
        body: str = "",
        message: str | None = None,
    ) -> None:
        self.side = side
        self.method = method
        self.path = path
        self.status = status
        self.body = trim(body)
        self.message = scrub(message or self.default_message())
        super().__init__(self.message)

    @property
    def side_label(self) -> str:
        return SIDE_LABEL.get(self.side, self.side)

    @property
    def overloaded(self) -> bool:
        """The server asks for less at once: throttled, unavailable, or its gateway timed out."""
        return self.status in OVERLOAD_STATUSES

    def default_message(self) -> str:
        detail = f": {self.body}" if self.body else ""
        return f"{self.side_label} API answered {self.status} to {self.method} {self.path}{detail}"

    def to_dict(self) -> dict[str, object]:
        return {
            "type": type(self).__name__,
            "side": self.side,
            "status": self.status,
            "method": self.method,
            "path": self.path,
            "body": self.body,
            "message": self.message,
        }


class BadRequestError(ApiError):
    pass


class AuthenticationError(ApiError):
    def default_message(self) -> str:
        key_var = SIDE_VARS.get(self.side, ("the API key",))[0]
        return (
            f"the {self.side_label} API key was rejected (401 on {self.method} {self.path}): check {key_var}"
        )


class PermissionDeniedError(ApiError):
    def default_message(self) -> str:
        detail = f" ({self.body})" if self.body else ""
        return (
            f"the {self.side_label} API key is not allowed to {self.method} {self.path}{detail}: "
            "give the key's user or service account that permission"
        )


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    pass


class PayloadTooLargeError(ApiError):
    def default_message(self) -> str:
        return f"the {self.side_label} API refused {self.method} {self.path} as too large (413)"


class RateLimitedError(ApiError):
    def default_message(self) -> str:
        return (
            f"the {self.side_label} API kept rate-limiting {self.method} {self.path} (429) after every retry: "
            "lower MIGRATION_MAX_CONCURRENT_REQUESTS or raise MIGRATION_RETRY_ATTEMPTS"
        )


class ServerError(ApiError):
    pass


class NetworkError(ApiError):
    """The request never got an HTTP answer: DNS, refused connection, timeout, dropped connection."""

    def __init__(
        self, *, side: str, method: str, path: str, url: str, reason: str, timed_out: bool = False
    ) -> None:
        self.url = url
        self.reason = reason
        self.timed_out = timed_out
        super().__init__(side=side, method=method, path=path, status=None)

    @property
    def overloaded(self) -> bool:
        # No answer in time: most often requests queued at a server that is too busy for them.
        return self.timed_out

    def default_message(self) -> str:
        url_var = SIDE_VARS.get(self.side, ("", "the URL"))[1]
        return f"could not reach the {self.side_label} API at {self.url}: {self.reason} (check {url_var} and the network)"


class PaginationError(ApiError):
    """A list endpoint returned a page whose cursor did not advance."""


def display_url(url: str) -> str:
    """A URL fit for a message: without its query, which may be a signature (blob URLs)."""
    return str(url).partition("?")[0].partition("#")[0]


class _UrlError(ApiError):
    """An answer that arrived but cannot be used; `reason` says why, `url` where it came from."""

    def __init__(
        self, *, side: str, method: str, path: str, url: str, status: int | None, reason: str
    ) -> None:
        self.url = display_url(url)
        self.reason = reason
        super().__init__(side=side, method=method, path=path, status=status)

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "url": self.url, "reason": self.reason}


class MalformedResponse(_UrlError):
    """The body is not what the endpoint answers: invalid JSON, a wrong type, a corrupt encoding."""

    def default_message(self) -> str:
        return f"the {self.side_label} API sent a malformed answer to {self.method} {self.url}: {self.reason}"


class ResponseTooLarge(_UrlError):
    """The decoded body passed MIGRATION_MAX_RESPONSE_BYTES; reading stopped there."""

    def __init__(self, *, side: str, method: str, path: str, url: str, status: int | None, cap: int) -> None:
        self.cap = cap
        reason = f"the answer decodes to more than {cap} bytes"
        super().__init__(side=side, method=method, path=path, url=url, status=status, reason=reason)

    def default_message(self) -> str:
        return (
            f"the {self.side_label} API's answer to {self.method} {self.url} decodes to more than "
            f"{self.cap} bytes; reading stopped at MIGRATION_MAX_RESPONSE_BYTES={self.cap} "
            "(raise it with --max-response-bytes if such an answer is expected)"
        )


class RedirectRefused(_UrlError):
    """A redirect the client will not follow: another origin for a body, a downgrade, a bad Location."""

    def default_message(self) -> str:
        url_var = SIDE_VARS.get(self.side, ("", "the URL"))[1]
        return (
            f"the {self.side_label} API redirected {self.method} {self.url} ({self.status}): "
            f"{self.reason}; not followed (check {url_var})"
        )


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitedError,
}


def error_for_status(status: int) -> type[ApiError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else ApiError


def is_timeout(exc: Exception) -> bool:
    """A transport error that is a timeout (the aiohttp transport's own, under httpx's names)."""
    return isinstance(exc, httpx.TimeoutException) or isinstance(exc.__cause__, TimeoutError)


def describe_transport_error(exc: Exception) -> str:
    """What went wrong on the wire, in words (for NetworkError.reason)."""
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        # The aiohttp transport maps its errors onto httpx's coarsely: describe the original.
        detail = str(cause).strip()
        name = type(cause).__name__
        if isinstance(cause, TimeoutError):
            return "no response before the timeout"
        if "Disconnected" in name or "Payload" in name:
            return f"the connection was dropped mid-response ({detail or name})"
        return f"connection failed ({detail or name})"
    kinds: dict[type[Exception], str] = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "no response before the read timeout",
        httpx.WriteTimeout: "timed out sending the request",
        httpx.PoolTimeout: "no free connection in the pool",
        httpx.RemoteProtocolError: "the connection was dropped mid-response",
    }
    kind = kinds.get(type(exc))
    if kind:
        return kind
    text = str(exc).strip()
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed ({text or 'refused'})"
    return text or type(exc).__name__
