"""Rows on the wire during a migration, for tests that judge memory against what was sent: rows
the source has answered minus rows the destination has acknowledged, seen at every exchange."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from tests.integration.events.helpers import client, insert


def is_row_read(request: httpx.Request) -> bool:
    return request.url.path == "/btql" and b"select: *" in request.content


class Wire:
    def __init__(self, source_key: str, on_held: Callable[[int], None] = lambda held: None) -> None:
        self.source_key = source_key
        self.on_held = on_held  # called with the rows held after each exchange
        self.read = self.written = self.peak = self.read_bytes = 0

    def saw(self, request: httpx.Request, response: httpx.Response) -> None:
        if response.status_code != 200:
            return
        mine = request.headers.get("authorization", "").endswith(self.source_key)
        if mine and is_row_read(request):
            self.read += len(orjson.loads(response.content).get("data") or [])
            self.read_bytes += len(response.content)
        elif not mine and request.url.path.endswith("/insert"):
            self.written += len(orjson.loads(response.content).get("row_ids") or [])
        self.peak = max(self.peak, self.read - self.written)
        self.on_held(self.read - self.written)

    def watch(
        self, monkeypatch: pytest.MonkeyPatch, before: Callable[[httpx.Request], None] = lambda r: None
    ) -> None:
        """Every exchange of every httpx client in this process goes past `saw` (and `before`)."""
        send = httpx.AsyncClient.send

        async def watched(client: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> httpx.Response:
            before(request)
            response = await send(client, request, **kw)
            await response.aread()
            self.saw(request, response)
            return response

        monkeypatch.setattr(httpx.AsyncClient, "send", watched)


def source_datasets(url: str, org: SandboxOrg, project: str, rows: list[list[dict[str, Any]]]) -> list[str]:
    """A project with one dataset per list of rows, written in; the datasets' ids."""
    with client(url, org) as c:
        project_id = c.post("/v1/project", json={"name": project}).json()["id"]
        ids = [
            c.post("/v1/dataset", json={"project_id": project_id, "name": f"d{n}"}).json()["id"]
            for n in range(len(rows))
        ]
    for dataset, part in zip(ids, rows, strict=True):
        insert(url, org, "dataset", dataset, part)
    return ids
