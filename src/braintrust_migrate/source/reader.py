"""Reading a container's rows: BTQL keyset pages in write order, or /fetch when a data
plane has no BTQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from braintrust_migrate import btql
from braintrust_migrate.client import ApiClient, ApiError, NotFoundError
from braintrust_migrate.config import parse_time
from braintrust_migrate.liblog import get_logger

log = get_logger(__name__)

SHRINKABLE = frozenset({500, 502, 503, 504})
MIN_PAGE = 10
GROW_AFTER = 3  # successful pages before a shrunk page size doubles again


@dataclass
class Page:
    rows: list[dict[str, Any]]
    nbytes: int
    last_key: str | None  # resume point after this page (keyset or cursor)
    seen: list[str] = field(default_factory=list)  # /fetch: ids first seen here, kept once acknowledged


@dataclass
class Window:
    after: datetime | None = None
    before: datetime | None = None

    def btql(self) -> str:
        parts = []
        if self.after:
            parts.append(btql.cmp("created", ">=", self.after))
        if self.before:
            parts.append(btql.cmp("created", "<", self.before))
        return btql.all_of(parts)

    def admits(self, row: dict[str, Any]) -> bool:
        created = row.get("created")
        if not created or not (self.after or self.before):
            return True
        when = parse_time(created)
        return (self.after is None or when >= self.after) and (self.before is None or when < self.before)


class NoBtql(Exception):
    """The data plane has no /btql: read with /fetch instead."""


class PagingStuck(ApiError):
    """The source returned a page that does not move past the last one: reading on would loop forever."""


def _stuck(client: ApiClient, path: str, kind: str, src_id: str, what: str) -> PagingStuck:
    return PagingStuck(
        side=client.side,
        method="POST",
        path=path,
        status=None,
        message=f"the source API's paging of {kind} {src_id} did not advance ({what}): this stream stopped",
    )


@dataclass
class BtqlReader:
    client: ApiClient
    kind: str  # project_logs | experiment | dataset
    src_id: str
    page_size: int
    window: Window = field(default_factory=Window)
    after_key: str | None = None
    others: tuple[str, ...] = ()  # containers read in the same keyset (a shared read)
    _limit: int = 0
    _streak: int = 0

    def query(self, limit: int) -> str:
        ids = [self.src_id, *self.others]
        query = btql.Query(self.kind, ids, sort=[("_pagination_key", "asc")], limit=limit)
        if self.after_key:
            query.where(btql.cmp("_pagination_key", ">", self.after_key))
        return query.where(self.window.btql()).text()

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
            rows = self.client.decode(response, expect=dict).get("data") or []
            if rows:
                key = rows[-1].get("_pagination_key")
                if not isinstance(key, str) or (self.after_key is not None and key <= self.after_key):
                    where = f"last key {key!r} after {self.after_key!r}"
                    raise _stuck(self.client, "/btql", self.kind, self.src_id, where)
                self.after_key = key
                yield Page(rows, len(response.content), self.after_key)
            if len(rows) < limit:
                return

    def _grow(self) -> None:
        if self._limit < self.page_size:
            self._streak += 1
            if self._streak >= GROW_AFTER:
                self._limit, self._streak = min(self.page_size, self._limit * 2), 0


def _newest_xact(rows: list[dict[str, Any]]) -> str | None:
    xacts = [str(row["_xact_id"]) for row in rows if str(row.get("_xact_id") or "").isdigit()]
    return max(xacts, key=int) if xacts else None


@dataclass
class FetchReader:
    """Newest-first pages of live rows. The spec allows later pages to repeat older versions of
    a row (the hosted API no longer does): each id's first (latest) sighting is kept."""

    client: ApiClient
    kind: str
    src_id: str
    page_size: int
    seen: Any  # .has(row_id): seen on a page an earlier run had acknowledged
    window: Window = field(default_factory=Window)
    cursor: str | None = None

    async def pages(self) -> AsyncIterator[Page]:
        path = f"/v1/{self.kind}/{self.src_id}/fetch"
        # Ids seen in this run; earlier runs' come from `seen`, which holds only acknowledged pages,
        # so a page read but never written is read again in full after a kill.
        run_seen: set[str] = set()
        cursors = {self.cursor} if self.cursor else set()
        # Newest first, rows updated while we page move ahead of the cursor: the pages after the
        # first read the container as of the first page's newest transaction, so none slides past.
        version: str | None = None
        while True:
            body: dict[str, Any] = {"limit": self.page_size}
            if self.cursor:
                body["cursor"] = self.cursor
            if version is not None:
                body["version"] = version
            response = await self.client.request("POST", path, json=body)
            data = self.client.decode(response, expect=dict)
            events = data.get("events") or []
            if version is None:
                version = _newest_xact(events)
            fresh, ids = [], []
            for row in events:  # the first sighting of an id is its latest version
                if row["id"] not in run_seen and not self.seen.has(row["id"]):
                    run_seen.add(row["id"])
                    ids.append(row["id"])
                    fresh.append(row)
            cursor = data.get("cursor")
            if events and cursor and cursor in cursors:
                raise _stuck(self.client, path, self.kind, self.src_id, "a cursor came back again")
            cursors.add(cursor)
            self.cursor = cursor or self.cursor
            rows = [row for row in fresh if self.window.admits(row)]
            if rows or events:
                yield Page(rows, len(response.content), self.cursor, ids)
            if not events or not cursor:
                return
