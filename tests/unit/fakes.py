"""A scripted fake API for client tests: routes answer in order, calls are recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from braintrust_migrate.client import ApiClient, RetryPolicy

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeApi:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.calls: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Answer) -> FakeApi:
        self.routes.setdefault((method, path), []).extend(answers)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(404, json={"error": f"no route {request.method} {request.url.path}"})
        answer = queue[0] if len(queue) == 1 else queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_client(
    api: FakeApi,
    *,
    side: str = "source",
    base_url: str = "https://api.example.test",
    attempts: int = 3,
    sleep: FakeSleep | None = None,
    max_concurrent: int = 4,
    **kw: Any,
) -> ApiClient:
    import random

    return ApiClient(
        side=side,
        base_url=base_url,
        api_key="sk-test-secret-key-0001",
        max_concurrent_requests=max_concurrent,
        retry=RetryPolicy(attempts=attempts, base_delay=1.0, max_delay=8.0, rng=random.Random(7)),
        transport=api.transport(),
        sleep=sleep or FakeSleep(),
        **kw,
    )
