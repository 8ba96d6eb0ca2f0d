"""When to retry a request and how long to wait: exponential backoff with full jitter.

The one retry policy of the tool: the client's request loop, its multi-request operations
(`ApiClient.retrying`) and the comment copier (which reads back before re-sending) all decide here.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from braintrust_migrate.client.errors import ApiError

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# A 429 is refused before any work; these (and a lost response, None) may have been applied.
MAY_HAVE_LANDED = frozenset({None, *RETRYABLE_STATUSES} - {429})
# A server asking for more than this is probably wrong; we still wait, but not forever.
MAX_RETRY_AFTER = 300.0

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
OnRetry = Callable[[ApiError, int, float], None]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def should_retry(self, attempt: int, status: int | None, *, idempotent: bool = True) -> bool:
        """`attempt` counts retries already made; status None means a network error. A request
        that is not idempotent is re-sent only after a 429: anything else may have been applied."""
        if attempt >= self.attempts:
            return False
        if not idempotent and status != 429:
            return False
        return status is None or status in RETRYABLE_STATUSES

    def should_resend(self, attempt: int, status: int | None) -> bool:
        """For a caller that reads back what landed before re-sending a non-idempotent request
        (its 429s were already retried by the request loop)."""
        return attempt < self.attempts and status in MAY_HAVE_LANDED

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]; Retry-After is a floor."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        jittered = self.rng.uniform(0, ceiling) if ceiling > 0 else 0.0
        if retry_after is not None:
            return max(retry_after, jittered)
        return jittered

    async def run(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        sleep: Sleep,
        idempotent: bool = True,
        surface: frozenset[int] = frozenset(),
        honour_retry_after: bool = True,
        on_retry: OnRetry | None = None,
    ) -> T:
        """`operation` until it succeeds or its ApiError is final. Statuses in `surface` are final
        at once (the caller reacts to them itself); `on_retry(error, attempt, delay)` sees each retry."""
        attempt = 0
        while True:
            try:
                return await operation()
            except ApiError as error:
                if error.status in surface or not self.should_retry(
                    attempt, error.status, idempotent=idempotent
                ):
                    raise
                delay = self.delay(attempt, error.retry_after if honour_retry_after else None)
                attempt += 1
                if on_retry is not None:
                    on_retry(error, attempt, delay)
            # Outside the handler: the error's traceback reaches the failed attempt's request and
            # its body, which a request backing off need not hold.
            await sleep(delay)
