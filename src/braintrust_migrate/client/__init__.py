"""HTTP access to a Braintrust API: one client per side of a migration."""

from __future__ import annotations

import httpx

from braintrust_migrate.client.api import ApiClient, ClientStats
from braintrust_migrate.client.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    MalformedResponse,
    NetworkError,
    NotFoundError,
    PaginationError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    RedirectRefused,
    ResponseTooLarge,
    ServerError,
)
from braintrust_migrate.client.retry import RetryPolicy
from braintrust_migrate.config import Settings

__all__ = [
    "ApiClient",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "ClientStats",
    "ConflictError",
    "MalformedResponse",
    "NetworkError",
    "NotFoundError",
    "PaginationError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RedirectRefused",
    "ResponseTooLarge",
    "RetryPolicy",
    "ServerError",
    "client_for",
]


def client_for(
    settings: Settings, side: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> ApiClient:
    """The client for 'source' or 'dest' as the settings describe it."""
    return ApiClient(
        side=side,
        base_url=settings.url(side),
        api_key=settings.api_key(side),
        org_name=settings.org_name(side),
        page_size=settings.migration_batch_size,
        max_concurrent_requests=settings.migration_max_concurrent_requests,
        retry=RetryPolicy(
            attempts=settings.migration_retry_attempts,
            base_delay=settings.migration_retry_delay,
            max_delay=settings.migration_retry_max_delay,
        ),
        timeout=settings.migration_request_timeout,
        connect_timeout=settings.migration_connect_timeout,
        transport=transport,
        max_response_bytes=settings.migration_max_response_bytes,
        allow_insecure_http=settings.bt_allow_insecure_http,
    )
