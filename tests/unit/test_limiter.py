"""The per-side request cap: never more holders than the limit, slots handed over first come first
served, no slot lost to a cancelled waiter, and a release that wakes one waiter, not all."""

from __future__ import annotations

import asyncio

import pytest

from braintrust_migrate.client.limiter import AdaptiveLimiter


async def _hold(limiter: AdaptiveLimiter, seen: list[int], order: list[int], index: int) -> None:
    async with limiter.slot():
        order.append(index)
        seen.append(limiter.in_flight)
        await asyncio.sleep(0)


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_never_more_holders_than_the_limit_and_first_come_first_served(limit: int) -> None:
    async def main() -> tuple[list[int], list[int], int]:
        limiter = AdaptiveLimiter(limit)
        seen: list[int] = []
        order: list[int] = []
        await asyncio.gather(*(_hold(limiter, seen, order, i) for i in range(60)))
        return seen, order, limiter.in_flight

    seen, order, left = asyncio.run(main())
    assert max(seen) == limit
    assert order == list(range(60))
    assert left == 0


def test_a_cancelled_waiter_loses_no_slot() -> None:
    async def main() -> list[str]:
        limiter = AdaptiveLimiter(1)
        got: list[str] = []
        release = asyncio.Event()

        async def holder() -> None:
            async with limiter.slot():
                got.append("a")
                await release.wait()

        async def waiter(name: str) -> None:
            async with limiter.slot():
                got.append(name)

        a = asyncio.create_task(holder())
        await asyncio.sleep(0)
        b, c = asyncio.create_task(waiter("b")), asyncio.create_task(waiter("c"))
        await asyncio.sleep(0)
        b.cancel()
        release.set()
        await asyncio.wait_for(asyncio.gather(a, c), 5)
        assert b.cancelled() and limiter.in_flight == 0
        return got

    assert asyncio.run(main()) == ["a", "c"]


def test_a_waiter_cancelled_as_it_is_handed_the_slot_passes_it_on() -> None:
    async def main() -> list[str]:
        limiter = AdaptiveLimiter(1)
        got: list[str] = []

        async def waiter(name: str) -> None:
            async with limiter.slot():
                got.append(name)

        async with limiter.slot():
            b, c = asyncio.create_task(waiter("b")), asyncio.create_task(waiter("c"))
            await asyncio.sleep(0)
        # The slot was handed to b on release; b is cancelled before it runs.
        b.cancel()
        await asyncio.wait_for(asyncio.gather(b, c, return_exceptions=True), 5)
        assert limiter.in_flight == 0
        return got

    assert asyncio.run(main()) == ["c"]


def test_a_grown_limit_admits_waiters_at_once() -> None:
    async def main() -> int:
        limiter = AdaptiveLimiter(4)
        async with limiter.slot() as permit:
            limiter.on_throttled(permit)  # limit 2
        assert limiter.limit == 2
        hold = asyncio.Event()
        inside: list[int] = []

        async def one() -> None:
            async with limiter.slot():
                inside.append(1)
                await hold.wait()

        tasks = [asyncio.create_task(one()) for _ in range(4)]
        await asyncio.sleep(0)
        assert len(inside) == 2
        for _ in range(8):  # successes creep the limit back to 4
            limiter.on_success()
        await asyncio.sleep(0)
        hold.set()
        await asyncio.gather(*tasks)
        return len(inside)

    assert asyncio.run(main()) == 4


def test_each_release_wakes_one_waiter_not_all() -> None:
    """300 requests queued behind one slot: the loop runs a few callbacks per request. Waking every
    waiter on each release (as a Condition's notify_all does) runs tens of thousands."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveLimiter(1)
        calls = 0
        call_soon = loop.call_soon

        def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            return call_soon(*args, **kwargs)

        async def one() -> None:
            async with limiter.slot():
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(one()) for _ in range(300)]
        loop.call_soon = counting  # type: ignore[method-assign]
        try:
            await asyncio.gather(*tasks)
        finally:
            loop.call_soon = call_soon  # type: ignore[method-assign]
        return calls

    assert asyncio.run(main()) < 300 * 10
