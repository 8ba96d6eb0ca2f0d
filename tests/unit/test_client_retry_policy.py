"""The one retry policy (client/retry.py), table-driven: which failures are retried, for which
kind of caller, and how `run` drives an operation. Every retry loop of the tool decides here."""

from __future__ import annotations

import random

import pytest

from braintrust_migrate.client import ApiError, NetworkError, RetryPolicy, ServerError
from braintrust_migrate.client.retry import MAY_HAVE_LANDED, RETRYABLE_STATUSES
from tests.unit.fakes import FakeSleep


def policy(attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=1.0, max_delay=8.0, rng=random.Random(3))


@pytest.mark.parametrize(
    ("attempt", "status", "idempotent", "retry"),
    [
        (0, None, True, True),  # network error
        (0, 408, True, True),
        (0, 429, True, True),
        (0, 500, True, True),
        (0, 502, True, True),
        (0, 503, True, True),
        (0, 504, True, True),
        (0, 501, True, False),  # not implemented: the same answer again
        (0, 400, True, False),
        (0, 401, True, False),
        (0, 404, True, False),
        (0, 409, True, False),
        (0, 413, True, False),
        (2, 503, True, True),
        (3, 503, True, False),  # the budget is spent
        (0, None, False, False),  # a lost response may have been applied
        (0, 503, False, False),
        (0, 408, False, False),
        (0, 429, False, True),  # refused before any work
        (3, 429, False, False),
    ],
)
def test_should_retry(attempt: int, status: int | None, idempotent: bool, retry: bool) -> None:
    assert policy().should_retry(attempt, status, idempotent=idempotent) is retry


@pytest.mark.parametrize(
    ("attempt", "status", "resend"),
    [
        (0, None, True),
        (0, 408, True),
        (0, 500, True),
        (0, 504, True),
        (2, 502, True),
        (3, 502, False),
        (0, 429, False),  # the request loop already retried it to the end
        (0, 400, False),
        (0, 409, False),
    ],
)
def test_should_resend_after_reading_back(attempt: int, status: int | None, resend: bool) -> None:
    assert policy().should_resend(attempt, status) is resend


def test_the_sets_are_the_ones_the_tool_always_used() -> None:
    assert {408, 429, 500, 502, 503, 504} == RETRYABLE_STATUSES
    # The comment copier's former private set, now the policy's.
    assert {None, 408, 500, 502, 503, 504} == MAY_HAVE_LANDED


def _error(status: int | None, retry_after: float | None = None) -> ApiError:
    if status is None:
        return NetworkError(side="dest", method="POST", path="/x", url="https://x.test/x", reason="refused")
    error = ServerError(side="dest", method="POST", path="/x", status=status)
    error.retry_after = retry_after
    return error


class Script:
    """An operation that fails with the given errors in turn, then answers "ok"."""

    def __init__(self, *errors: ApiError) -> None:
        self.errors, self.calls = list(errors), 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.mark.parametrize(
    ("errors", "kw", "calls", "outcome"),
    [
        ([503, 502], {}, 3, "ok"),
        ([503] * 4, {}, 4, 503),  # 1 + 3 retries, then the last error
        ([None, None], {}, 3, "ok"),
        ([504], {"surface": frozenset({504})}, 1, 504),  # the caller reacts to it itself
        ([503], {"idempotent": False}, 1, 503),
        ([None], {"idempotent": False}, 1, None),
        ([429, 429], {"idempotent": False}, 3, "ok"),
        ([400], {}, 1, 400),
    ],
)
async def test_run(errors: list[int | None], kw: dict, calls: int, outcome: str | int | None) -> None:
    script = Script(*[_error(status) for status in errors])
    sleep = FakeSleep()
    if outcome == "ok":
        assert await policy().run(script, sleep=sleep, **kw) == "ok"
    else:
        with pytest.raises(ApiError) as info:
            await policy().run(script, sleep=sleep, **kw)
        assert info.value.status == outcome
    assert script.calls == calls
    assert len(sleep.delays) == calls - 1


async def test_run_reports_each_retry_and_backs_off_within_the_cap() -> None:
    seen: list[tuple[int | None, int, float]] = []
    sleep = FakeSleep()
    await policy().run(
        Script(_error(503), _error(None), _error(500)),
        sleep=sleep,
        on_retry=lambda error, attempt, delay: seen.append((error.status, attempt, delay)),
    )
    assert [(status, attempt) for status, attempt, _ in seen] == [(503, 1), (None, 2), (500, 3)]
    assert [delay for *_, delay in seen] == sleep.delays
    assert all(0 <= d <= cap for d, cap in zip(sleep.delays, [1, 2, 4], strict=True))


@pytest.mark.parametrize(("honour", "floor"), [(True, 7.0), (False, 0.0)])
async def test_retry_after_is_a_floor_unless_the_caller_opts_out(honour: bool, floor: float) -> None:
    sleep = FakeSleep()
    await policy().run(Script(_error(503, retry_after=7.0)), sleep=sleep, honour_retry_after=honour)
    assert sleep.delays[0] >= floor
    if not honour:
        assert sleep.delays[0] <= 1.0  # base * 2**0: the header is ignored
