"""Where a run reads an org from: a live org over its API, or an export folder.

The engine, dry run and verify read the source only through `Source`; `LiveSource` wraps
an `ApiClient`, `archive.FolderSource` reads a folder `export` wrote. The destination is
read through a `LiveSource` too (its listings), and written through its client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from braintrust_migrate.client import ClientStats
    from braintrust_migrate.config import Settings
    from braintrust_migrate.engine.resources import ResourceType
    from braintrust_migrate.source.reader import Page, Window


class RowReader(Protocol):
    """Pages of one container's live rows, each with the point a resume starts after."""

    def pages(self) -> AsyncIterator[Page]: ...


class SnapshotReader(Protocol):
    """A dataset as of a version (None: now): latest version per id, deleted ids dropped."""

    btql: bool  # whether pages carry `_pagination_key` resume points

    async def ids(self, version: int | None) -> tuple[set[str], str | None]: ...

    def rows(self, version: int | None, since: int | None) -> AsyncIterator[list[dict[str, Any]]]: ...

    async def any_row(self, version: int) -> dict[str, Any] | None: ...


class Blob(Protocol):
    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Source(Protocol):
    side: str
    shares_reads: bool  # whether `counts` and `shared_rows` read several containers in one query

    @property
    def stats(self) -> ClientStats:
        """Requests made, for the report (none for a folder)."""
        ...

    def describe(self) -> str:
        """How messages name this source: its API URL or its folder."""
        ...

    def settings_for(self, settings: Settings) -> Settings:
        """The run's settings with what the source itself chose filled in (an export's selection)."""
        ...

    async def organizations(self) -> list[dict[str, Any]]: ...

    async def list_type(
        self, rt: ResourceType, org_name: str | None, *, filtered: bool = True
    ) -> list[dict[str, Any]]:
        """Every object of the type org-wide (PermissionDeniedError when the key may not)."""
        ...

    async def list_owned(self, rt: ResourceType, object_type: str, object_id: str) -> list[dict[str, Any]]:
        """The type's objects of one owner (NotFoundError when the owner has gone)."""
        ...

    async def fetch_one(self, rt: ResourceType, object_id: str) -> dict[str, Any] | None: ...

    async def users(self, org_name: str | None) -> list[dict[str, Any]]: ...

    def rows(
        self, kind: str, container: str, page_size: int, window: Window, after_key: str | None = None
    ) -> RowReader:
        """A container's rows after `after_key`. Its pages raise NoBtql when the source must be
        read with `fetch_rows` instead."""
        ...

    def shared_rows(
        self, kind: str, containers: list[str], page_size: int, window: Window, after_key: str | None
    ) -> RowReader:
        """The rows of several containers in one keyset, interleaved in `_pagination_key` order
        (only where `shares_reads`)."""
        ...

    def fetch_rows(
        self, kind: str, container: str, page_size: int, seen: Any, window: Window, cursor: str | None
    ) -> RowReader: ...

    async def counts(self, kind: str, containers: list[str], window: Window) -> dict[str, int | None]:
        """Live rows in the window per container, counted together where the source can."""
        ...

    async def count(
        self, kind: str, container: str, window: Window, after_key: str | None = None
    ) -> int | None:
        """Live rows in the window (after `after_key`); None when the source cannot count."""
        ...

    async def sample(
        self, kind: str, container: str, window: Window, after_key: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The next `limit` rows after `after_key`, for a dry run's byte estimate."""
        ...

    async def by_ids(self, kind: str, container: str, ids: list[str]) -> dict[str, dict[str, Any]]: ...

    async def row_ids(self, kind: str, container: str) -> set[str] | None:
        """The id of every live row; None when the source cannot tell which rows are gone."""
        ...

    def snapshots(self, dataset: str, page_size: int, window: Window) -> SnapshotReader: ...

    async def attachment(self, ref: dict[str, Any], org_id: str) -> tuple[Blob, int | None]:
        """The bytes of a braintrust_attachment reference, and their size when known."""
        ...
