"""A per-side cap on in-flight requests that adapts to rate limiting (AIMD)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from braintrust_migrate.client.errors import ApiError

T = TypeVar("T")


@dataclass
class Permit:
    epoch: int


class AdaptiveLimiter:
    """At most `limit` holders at once; `limit` halves on overload and creeps back on success.

    A burst of 429s from requests that were already in flight when the limit was
    cut counts once: only a permit taken in the current epoch can cut it again.

    Waiters queue first in, first out, and a freed slot is handed to exactly one of them: waking
    every waiter on each release (a Condition's notify_all) cost the object phase, with hundreds
    of requests queued, more CPU than the requests themselves.
    """

    def __init__(self, max_limit: int, min_limit: int = 1) -> None:
        self.max_limit = max_limit
        self.min_limit = max(1, min(min_limit, max_limit))
        self._limit = float(max_limit)
        self._in_flight = 0
        self._epoch = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return max(self.min_limit, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Permit]:
        await self._acquire()
        try:
            yield Permit(self._epoch)
        finally:
            self._in_flight -= 1
            self._hand_over()

    async def _acquire(self) -> None:
        if not self._waiters and self._in_flight < self.limit:
            self._in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed a slot in the same tick as the cancellation: pass it on.
                self._in_flight -= 1
                self._hand_over()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _hand_over(self) -> None:
        """Give free slots to the oldest waiters (the slot is counted for them here)."""
        while self._waiters and self._in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """One attempt in a slot; its answer tunes the limit: a sign of overload cuts it (a 429, 503
        or 504, or no answer before the timeout: requests queued at a busy server wait longer the
        more are sent), a success grows it."""
        async with self.slot() as permit:
            try:
                result = await attempt()
            except ApiError as error:
                if error.overloaded:
                    self.on_throttled(permit)
                raise
            self.on_success()
            return result

    def on_success(self) -> None:
        # Additive increase: about +1 per `limit` successes.
        if self._limit < self.max_limit:
            self._limit = min(float(self.max_limit), self._limit + 1.0 / max(self._limit, 1.0))
            self._hand_over()

    def on_throttled(self, permit: Permit) -> None:
        if permit.epoch != self._epoch:
            return
        self._limit = max(float(self.min_limit), self._limit / 2)
        self._epoch += 1
