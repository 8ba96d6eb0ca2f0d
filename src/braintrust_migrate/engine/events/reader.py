"""Reading a container's rows: BTQL keyset pages in write order, or /fetch when a data
plane has no BTQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import structlog

from braintrust_migrate.client import ApiClient, ApiError, NotFoundError
from braintrust_migrate.config import parse_time

log = structlog.get_logger(__name__)

SHRINKABLE = frozenset({500, 502, 503, 504})
MIN_PAGE = 10
GROW_AFTER = 3  # successful pages before a shrunk page size doubles again


@dataclass
class Page:
    rows: list[dict[str, Any]]
    nbytes: int
    last_key: str | None  # resume point after this page (keyset or cursor)


@dataclass
class Window:
    after: datetime | None = None
    before: datetime | None = None

    def btql(self) -> str:
        parts = []
        if self.after:
            parts.append(f"created >= '{_iso(self.after)}'")
        if self.before:
            parts.append(f"created < '{_iso(self.before)}'")
        return " and ".join(parts)

    def admits(self, row: dict[str, Any]) -> bool:
        created = row.get("created")
        if not created or not (self.after or self.before):
            return True
        when = parse_time(created)
        return (self.after is None or when >= self.after) and (self.before is None or when < self.before)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class NoBtql(Exception):
    """The data plane has no /btql: read with /fetch instead."""


@dataclass
class BtqlReader:
    client: ApiClient
    kind: str  # project_logs | experiment | dataset
    src_id: str
    page_size: int
    window: Window = field(default_factory=Window)
    after_key: str | None = None
    _limit: int = 0
    _streak: int = 0

    def query(self, limit: int) -> str:
        conditions = [f"_pagination_key > {_quote(self.after_key)}"] if self.after_key else []
        if self.window.btql():
            conditions.append(self.window.btql())
        lines = ["select: *", f"from: {self.kind}({_quote(self.src_id)}) spans"]
        if conditions:
            lines.append("filter: " + " and ".join(conditions))
        lines += ["sort: _pagination_key asc", f"limit: {limit}"]
        return "\n".join(lines)

    async def count(self) -> int | None:
        lines = ["measures: count(1) as n", f"from: {self.kind}({_quote(self.src_id)}) spans"]
        if self.window.btql():
            lines.append("filter: " + self.window.btql())
        try:
            data = await self.client.post_json("/btql", {"query": "\n".join(lines), "fmt": "json"})
        except NotFoundError:
            return None
        rows = data.get("data") or []
        return int(rows[0].get("n", 0)) if rows else 0

    async def pages(self) -> AsyncIterator[Page]:
        self._limit = self._limit or self.page_size
        while True:
            limit = self._limit
            try:
                response = await self.client.request(
                    "POST", "/btql", json={"query": self.query(limit), "fmt": "json"}, surface=SHRINKABLE
                )
            except NotFoundError:
                raise NoBtql from None
            except ApiError as error:
                if error.status in SHRINKABLE and limit > MIN_PAGE:
                    self._limit, self._streak = max(MIN_PAGE, limit // 2), 0
                    log.info("btql page failed, retrying smaller", status=error.status, limit=self._limit)
                    continue
                raise
            self._grow()
            rows = orjson.loads(response.content).get("data") or []
            if rows:
                self.after_key = rows[-1].get("_pagination_key") or self.after_key
                yield Page(rows, len(response.content), self.after_key)
            if len(rows) < limit:
                return

    def _grow(self) -> None:
        if self._limit < self.page_size:
            self._streak += 1
            if self._streak >= GROW_AFTER:
                self._limit, self._streak = min(self.page_size, self._limit * 2), 0


@dataclass
class FetchReader:
    """Newest-first pages over the whole version history: keep each id's first (latest) sighting."""

    client: ApiClient
    kind: str
    src_id: str
    page_size: int
    seen: Any  # (row_id) -> bool, and mark(list)
    window: Window = field(default_factory=Window)
    cursor: str | None = None

    async def pages(self) -> AsyncIterator[Page]:
        path = f"/v1/{self.kind}/{self.src_id}/fetch"
        while True:
            body: dict[str, Any] = {"limit": self.page_size}
            if self.cursor:
                body["cursor"] = self.cursor
            response = await self.client.request("POST", path, json=body)
            data = orjson.loads(response.content)
            events = data.get("events") or []
            fresh, ids = [], set()
            for row in events:  # the first sighting of an id is its latest version
                if row["id"] not in ids and not self.seen.has(row["id"]):
                    ids.add(row["id"])
                    fresh.append(row)
            self.seen.mark(list(ids))
            self.cursor = data.get("cursor") or self.cursor
            rows = [row for row in fresh if self.window.admits(row)]
            if rows or events:
                yield Page(rows, len(response.content), self.cursor)
            if not events or not data.get("cursor"):
                return
