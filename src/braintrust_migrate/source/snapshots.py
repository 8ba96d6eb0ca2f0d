"""A dataset as of a version, read from a live org: BTQL with `version`, or /fetch with
`version` where the data plane has no BTQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.btql import Query, cmp
from braintrust_migrate.client import ApiClient, NotFoundError
from braintrust_migrate.engine.refs import REFERENCES
from braintrust_migrate.engine.resources import BY_KIND, EVENT_STREAMS, STREAMS
from braintrust_migrate.source.reader import Window

# The stream whose containers other objects pin by version (datasets), read from the tables.
PINNED_STREAM = next(
    s.kind for s in EVENT_STREAMS if any(r.version_field and r.target == s.container for r in REFERENCES)
)
PINNED_PATH = BY_KIND[STREAMS[PINNED_STREAM].container].path


@dataclass
class Snapshots:
    """A dataset as of a version (latest version per id, deleted ids dropped): BTQL with
    `version`, or /fetch with `version` when the data plane has no BTQL."""

    client: ApiClient
    dataset: str
    page_size: int
    window: Window = field(default_factory=Window)
    btql: bool = True
    _fetched: dict[int | None, dict[str, dict[str, Any]]] = field(default_factory=dict)

    async def ids(self, version: int | None) -> tuple[set[str], str | None]:
        """Live ids as of `version` (None: now), and the largest `_pagination_key` among them."""
        ids: set[str] = set()
        last: str | None = None
        async for rows in self._pages(version, None, ("id", "_pagination_key")):
            ids.update(str(row["id"]) for row in rows)
            last = rows[-1].get("_pagination_key") or last
        return ids, last if self.btql else None

    async def rows(self, version: int | None, since: int | None) -> AsyncIterator[list[dict[str, Any]]]:
        """Rows as of `version` (None: now) last written after transaction `since` (all when None)."""
        async for rows in self._pages(version, since, ("*",)):
            yield rows

    async def any_row(self, version: int) -> dict[str, Any] | None:
        async for rows in self._pages(version, None, ("*",), limit=1):
            return rows[0]
        return None

    async def _pages(
        self, version: int | None, since: int | None, select: tuple[str, ...], limit: int | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        if self.btql:
            try:
                async for rows in self._btql(version, since, select, limit):
                    yield rows
                return
            except NotFoundError:
                self.btql = False
        snapshot = await self._fetch(version)
        rows = [r for r in snapshot.values() if since is None or int(r.get("_xact_id") or 0) > since]
        for start in range(0, len(rows), limit or self.page_size):
            yield rows[start : start + (limit or self.page_size)]
            if limit:
                return

    async def _btql(
        self, version: int | None, since: int | None, select: tuple[str, ...], limit: int | None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        after: str | None = None
        size = limit or self.page_size
        while True:
            query = Query(
                PINNED_STREAM, [self.dataset], select=select, sort=[("_pagination_key", "asc")], limit=size
            )
            query.where(self.window.btql())
            if since is not None:
                query.where(cmp("_xact_id", ">", since))
            if after:
                query.where(cmp("_pagination_key", ">", after))
            body: dict[str, Any] = query.body()
            if version is not None:
                body["version"] = str(version)
            data = await self.client.post_json("/btql", body)
            rows = data.get("data") or []
            if rows:
                yield rows
                after = rows[-1].get("_pagination_key")
            if limit or len(rows) < size or not after:
                return

    async def _fetch(self, version: int | None) -> dict[str, dict[str, Any]]:
        """Newest first over the whole history: an id's first sighting is its version as of `version`."""
        if version in self._fetched:
            return self._fetched[version]
        self._fetched = {}  # one snapshot at a time in memory
        path = f"{PINNED_PATH}/{self.dataset}/fetch"
        seen: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            body: dict[str, Any] = {"limit": self.page_size}
            if version is not None:
                body["version"] = str(version)
            if cursor:
                body["cursor"] = cursor
            data = await self.client.post_json(path, body)
            events = data.get("events") or []
            for row in events:
                if str(row["id"]) not in seen:
                    seen[str(row["id"])] = row
            cursor = data.get("cursor")
            if not events or not cursor:
                break
        # Oldest first, like BTQL's write order.
        ordered = sorted(
            (r for r in seen.values() if self.window.admits(r)), key=lambda r: int(r.get("_xact_id") or 0)
        )
        self._fetched[version] = {str(r["id"]): r for r in ordered}
        return self._fetched[version]
