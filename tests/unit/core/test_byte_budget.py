"""`ByteBudget`: rows read but not yet written are bounded by bytes, across every stream."""

from __future__ import annotations

import asyncio

from braintrust_migrate.engine.events.stream import ByteBudget


async def settle() -> None:
    """Let every ready task run until it blocks (no wall-clock waiting)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def granted_now(budget: ByteBudget, amount: int) -> int:
    """Acquire that must not wait: a failure, not a hang, when it would."""
    task = asyncio.create_task(budget.acquire(amount))
    await settle()
    if not task.done():
        task.cancel()
        raise AssertionError(f"acquire({amount}) waited with {budget.used} of {budget.limit} used")
    return task.result()


async def test_acquire_counts_used_and_peak() -> None:
    budget = ByteBudget(100)
    assert await granted_now(budget, 40) == 40
    assert await granted_now(budget, 30) == 30
    assert (budget.used, budget.peak) == (70, 70)
    await budget.release(40)
    assert (budget.used, budget.peak) == (30, 70)
    assert await granted_now(budget, 20) == 20
    assert (budget.used, budget.peak) == (50, 70)


async def test_exact_limit_is_granted_without_waiting() -> None:
    budget = ByteBudget(100)
    await budget.acquire(60)
    task = asyncio.create_task(budget.acquire(40))
    await settle()
    assert task.done() and task.result() == 40
    assert budget.used == 100


async def test_one_byte_over_waits_for_a_release() -> None:
    budget = ByteBudget(100)
    await budget.acquire(60)
    task = asyncio.create_task(budget.acquire(41))
    await settle()
    assert not task.done()
    assert budget.used == 60
    await budget.release(1)
    await settle()
    assert task.done() and task.result() == 41
    assert budget.used == 100


async def test_a_page_bigger_than_the_limit_goes_alone() -> None:
    budget = ByteBudget(100)
    granted = await granted_now(budget, 250)
    assert granted == 100  # clamped: it still goes, but it takes the whole budget
    assert (budget.used, budget.peak) == (100, 100)
    small = asyncio.create_task(budget.acquire(1))
    await settle()
    assert not small.done()
    await budget.release(granted)
    await settle()
    assert small.done() and budget.used == 1


async def test_a_big_page_waits_until_the_budget_is_empty() -> None:
    budget = ByteBudget(100)
    await budget.acquire(1)
    big = asyncio.create_task(budget.acquire(1000))
    await settle()
    assert not big.done()
    await budget.release(1)
    await settle()
    assert big.done() and big.result() == 100 and budget.used == 100


async def test_release_wakes_every_waiter_that_now_fits() -> None:
    budget = ByteBudget(10)
    await budget.acquire(10)
    waiters = [asyncio.create_task(budget.acquire(5)) for _ in range(2)]
    await settle()
    assert not any(w.done() for w in waiters)
    await budget.release(10)  # room for both: notify one only would leave the second asleep
    await settle()
    assert all(w.done() for w in waiters)
    assert budget.used == 10


async def test_a_partial_release_wakes_only_what_fits() -> None:
    budget = ByteBudget(10)
    await budget.acquire(8)
    needs_six = asyncio.create_task(budget.acquire(6))
    needs_two = asyncio.create_task(budget.acquire(2))
    await settle()
    assert needs_two.done() and not needs_six.done()  # 8 + 2 fits; 10 + 6 does not
    await budget.release(2)
    await settle()
    assert not needs_six.done()  # 8 used: 8 + 6 > 10
    await budget.release(4)
    await settle()
    assert needs_six.done() and budget.used == 10


async def test_many_streams_never_exceed_the_limit() -> None:
    budget = ByteBudget(1000)
    observed: list[int] = []

    async def stream(sizes: list[int]) -> None:
        for size in sizes:
            granted = await budget.acquire(size)
            observed.append(budget.used)
            await asyncio.sleep(0)
            await budget.release(granted)

    # A guard against a hang (a page over the limit that never fits), not a timing assert.
    async with asyncio.timeout(30):
        await asyncio.gather(*(stream([(i * 37 + j * 101) % 1500 + 1 for j in range(30)]) for i in range(12)))
    assert max(observed) <= 1000
    assert budget.peak == max(observed)
    assert budget.used == 0


async def test_a_page_is_charged_what_its_rows_take_parsed() -> None:
    # Parsed rows take about three times their JSON: a budget of 90 holds 30 bytes of JSON.
    budget = ByteBudget(90)
    first = await budget.hold(30)
    assert first == 90 and budget.used == 90
    waiting = asyncio.ensure_future(budget.hold(1))
    await asyncio.sleep(0)
    assert not waiting.done()  # full: the next page waits
    await budget.release(first)
    assert await waiting == 3
