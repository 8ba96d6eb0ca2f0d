"""A live org read over its API: listings, BTQL (or /fetch) row pages, attachments."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from braintrust_migrate import btql
from braintrust_migrate.client import ApiClient, ApiError, NotFoundError, client_for
from braintrust_migrate.client.api import ClientStats
from braintrust_migrate.config import Settings
from braintrust_migrate.engine.resources import STREAMS, ResourceType
from braintrust_migrate.source import Blob
from braintrust_migrate.source.reader import BtqlReader, FetchReader, Window
from braintrust_migrate.source.snapshots import Snapshots
from braintrust_migrate.urlguard import DownloadGuard, DownloadRefused

BY_IDS_CHUNK = 50
ID_PAGE = 1000  # ids per page when listing a container's row ids
COUNT_CHUNK = 100  # containers counted in one query


@contextlib.asynccontextmanager
async def open_live(settings: Settings, side: str) -> AsyncIterator[LiveSource]:
    """The org of one side of the settings, read over its API, for as long as the block runs."""
    async with client_for(settings, side) as client:
        yield LiveSource(client)


class LiveSource:
    shares_reads = True

    def __init__(self, client: ApiClient, guard: DownloadGuard | None = None) -> None:
        self.client = client
        self.side = client.side
        # Blobs come only from where the guard allows (the API's origin or public https hosts).
        self.guard = guard or DownloadGuard(client.base_url)

    def __repr__(self) -> str:
        return f"LiveSource({self.client.base_url})"

    @property
    def stats(self) -> ClientStats:
        return self.client.stats

    def describe(self) -> str:
        return self.client.base_url

    def settings_for(self, settings: Settings) -> Settings:
        return settings  # a live org chose nothing: the run's settings select

    async def organizations(self) -> list[dict[str, Any]]:
        return await self.client.list_all("/v1/organization")

    async def list_type(
        self, rt: ResourceType, org_name: str | None, *, filtered: bool = True
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = dict(rt.list_params or {}) if filtered else {}
        if rt.org_name_param and org_name:
            params["org_name"] = org_name
        return await self.client.list_all(rt.listing_path, params, cursor=rt.cursor)

    async def list_owned(self, rt: ResourceType, object_type: str, object_id: str) -> list[dict[str, Any]]:
        return await self.client.list_all(rt.path, {"object_type": object_type, "object_id": object_id})

    async def fetch_one(self, rt: ResourceType, object_id: str) -> dict[str, Any] | None:
        try:
            return await self.client.get_json(f"{rt.path}/{object_id}")
        except NotFoundError:
            return None
        except ApiError as error:
            if error.status == 400:  # e.g. a malformed id: nothing to find
                return None
            raise

    async def users(self, org_name: str | None) -> list[dict[str, Any]]:
        return await self.client.list_all("/v1/user", {"org_name": org_name})

    def rows(
        self, kind: str, container: str, page_size: int, window: Window, after_key: str | None = None
    ) -> BtqlReader:
        return BtqlReader(self.client, kind, container, page_size, window, after_key)

    def shared_rows(
        self, kind: str, containers: list[str], page_size: int, window: Window, after_key: str | None
    ) -> BtqlReader:
        return BtqlReader(
            self.client, kind, containers[0], page_size, window, after_key, tuple(containers[1:])
        )

    def fetch_rows(
        self, kind: str, container: str, page_size: int, seen: Any, window: Window, cursor: str | None
    ) -> FetchReader:
        return FetchReader(self.client, kind, container, page_size, seen, window, cursor)

    async def count(
        self, kind: str, container: str, window: Window, after_key: str | None = None
    ) -> int | None:
        query = btql.Query(kind, [container], measures=["count(1) as n"]).where(window.btql())
        if after_key:
            query.where(btql.cmp("_pagination_key", ">", after_key))
        try:
            data = await self.client.post_json("/btql", query.body())
        except NotFoundError:
            return None
        rows = data.get("data") or []
        return int(rows[0].get("n", 0)) if rows else 0

    async def counts(self, kind: str, containers: list[str], window: Window) -> dict[str, int | None]:
        """One BTQL count per COUNT_CHUNK containers, grouped by the rows' container field; where
        that query is refused, one count per container."""
        owner = STREAMS[kind].owner_field
        found: dict[str, int | None] = {}
        for start in range(0, len(containers), COUNT_CHUNK):
            chunk = containers[start : start + COUNT_CHUNK]
            query = btql.Query(kind, chunk, measures=["count(1) as n"], dimensions=[owner]).where(
                window.btql()
            )
            try:
                data = await self.client.post_json("/btql", query.body())
            except NotFoundError:
                return dict.fromkeys(containers)
            except ApiError:
                for container in chunk:
                    found[container] = await self.count(kind, container, window)
                continue
            by_owner = {str(row.get(owner)): int(row.get("n") or 0) for row in data.get("data") or []}
            found.update({container: by_owner.get(container, 0) for container in chunk})
        return found

    async def sample(
        self, kind: str, container: str, window: Window, after_key: str | None, limit: int
    ) -> list[dict[str, Any]]:
        query = btql.Query(kind, [container], sort=[("_pagination_key", "asc")], limit=limit)
        query.where(window.btql())
        if after_key:
            query.where(btql.cmp("_pagination_key", ">", after_key))
        return list((await self.client.post_json("/btql", query.body())).get("data") or [])

    async def by_ids(self, kind: str, container: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The rows with exactly these ids (ids are quoted by the BTQL builder, never spliced)."""
        found: dict[str, dict[str, Any]] = {}
        wanted = set(ids)
        for start in range(0, len(ids), BY_IDS_CHUNK):
            chunk = ids[start : start + BY_IDS_CHUNK]
            query = btql.Query(kind, [container], filters=[btql.any_of("id", chunk)], limit=len(chunk) * 2)
            data = await self.client.post_json("/btql", query.body())
            for row in data.get("data") or []:
                if str(row.get("id")) in wanted:
                    found[str(row["id"])] = row
        return found

    async def row_ids(self, kind: str, container: str) -> set[str] | None:
        """By BTQL keyset, ids only (None: the data plane has no BTQL)."""
        ids: set[str] = set()
        after: str | None = None
        while True:
            query = btql.Query(
                kind,
                [container],
                select=["id", "_pagination_key"],
                sort=[("_pagination_key", "asc")],
                limit=ID_PAGE,
            )
            if after is not None:
                query.where(btql.cmp("_pagination_key", ">", after))
            try:
                data = await self.client.post_json("/btql", query.body())
            except NotFoundError:
                return None
            rows = data.get("data") or []
            ids |= {str(r["id"]) for r in rows if r.get("id") is not None}
            key = rows[-1].get("_pagination_key") if rows else None
            if len(rows) < ID_PAGE or not isinstance(key, str) or (after is not None and key <= after):
                return ids
            after = key

    def snapshots(self, dataset: str, page_size: int, window: Window) -> Snapshots:
        return Snapshots(self.client, dataset, page_size, window)

    async def attachment(self, ref: dict[str, Any], org_id: str) -> tuple[Blob, int | None]:
        params = {
            "key": str(ref.get("key")),
            "filename": ref.get("filename") or "attachment",
            "content_type": ref.get("content_type") or "application/octet-stream",
            "org_id": org_id,
        }
        location = await self.client.get_json("/attachment", params)
        url = location.get("downloadUrl") if isinstance(location, dict) else None
        if not isinstance(url, str):
            raise DownloadRefused("", "the source gave no downloadUrl")
        await self.guard.check(url)
        return await self.client.open_blob(url, check=self.guard.check)
