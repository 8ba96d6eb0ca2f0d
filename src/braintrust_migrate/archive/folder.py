"""An export folder read as a source org: what `import --from DIR` and `verify --from DIR` use
in place of a `LiveSource`. Objects come from objects/<kind>.json, rows stream line by line
from the part files (gzip by suffix), attachments from attachments/. Nothing is written."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import orjson

from braintrust_migrate.archive import btsync
from braintrust_migrate.archive.distinct import DistinctIds
from braintrust_migrate.archive.integrity import ArchiveError, check
from braintrust_migrate.archive.layout import (
    ORG_FILE,
    USERS_FILE,
    Container,
    Manifest,
    Part,
    Unreadable,
    objects_path,
)
from braintrust_migrate.client import ApiError, PermissionDeniedError
from braintrust_migrate.client.api import ClientStats
from braintrust_migrate.config import Settings, parse_time
from braintrust_migrate.engine.resources import ResourceType
from braintrust_migrate.source.reader import Page, Window
from braintrust_migrate.urlguard import DownloadRefused

SIDE = "source"
CHUNK = 64 * 1024
SYNTHETIC_WIDTH = 12  # "f000000000042": string order is line order
YIELD_EVERY = 2000


def _read_error(rel: str, what: str) -> ApiError:
    # A stream failure, like a malformed API answer: the engine reports it per container.
    return ApiError(side=SIDE, method="READ", path=rel, status=None, message=f"{rel}: {what}")


def _open(path: Path) -> BinaryIO:
    if path.name.endswith(".gz"):
        return cast(BinaryIO, gzip.open(path, "rb"))
    return path.open("rb")


@dataclass
class _Line:
    row: dict[str, Any]
    key: str
    nbytes: int


def _lines(
    folder: Path, parts: list[Part], after_key: str | None = None, *, by_position: bool = False
) -> Iterator[_Line]:
    """Every row of the parts in order, each with its `_pagination_key` (synthetic for rows
    without one, and for every row `by_position`: "f" + the line's index in the container).
    Parts that end at or before `after_key` are skipped unopened."""
    index = 0
    for part in parts:
        if after_key is not None and part.last_key is not None and part.last_key <= after_key:
            index += part.rows
            continue
        try:
            with _open(folder / part.path) as handle:
                for number, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        row = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        raise _read_error(part.path, f"line {number} is not a JSON row") from None
                    if not isinstance(row, dict):
                        raise _read_error(part.path, f"line {number} is not a JSON object")
                    key = row.get("_pagination_key")
                    if by_position or not isinstance(key, str) or not key:
                        key = f"f{index:0{SYNTHETIC_WIDTH}d}"
                        row["_pagination_key"] = key
                    index += 1
                    yield _Line(row, key, len(line))
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise _read_error(part.path, f"cannot be read ({error})") from None


async def _scan(
    folder: Path, parts: list[Part], after_key: str | None = None, *, by_position: bool = False
) -> AsyncIterator[_Line]:
    """`_lines` for whole-container scans (counts, snapshots): they run beside the writes of
    other streams, so the event loop gets a turn every few thousand lines."""
    for number, line in enumerate(_lines(folder, parts, after_key, by_position=by_position), 1):
        if number % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        yield line


@dataclass
class FolderRows:
    """Pages of one container's rows after `after_key`, in the window (a `RowReader`)."""

    folder: Path
    parts: list[Part]
    page_size: int
    window: Window = field(default_factory=Window)
    after_key: str | None = None
    by_position: bool = False

    async def pages(self) -> AsyncIterator[Page]:
        rows: list[dict[str, Any]] = []
        nbytes = 0
        start = self.after_key
        for line in _lines(self.folder, self.parts, start, by_position=self.by_position):
            if start is not None and line.key <= start:
                continue
            if not self.window.admits(line.row):
                continue
            rows.append(line.row)
            nbytes += line.nbytes
            if len(rows) >= self.page_size:
                self.after_key = line.key
                yield Page(rows, nbytes, line.key)
                rows, nbytes = [], 0
        if rows:
            self.after_key = str(rows[-1]["_pagination_key"])
            yield Page(rows, nbytes, self.after_key)


@dataclass
class FolderSnapshots:
    """A dataset as of a version from the export (a `SnapshotReader`): None reads the live
    parts, V the parts exported for pin V. Latest occurrence per id wins; deletions drop it."""

    folder: Path
    container: Container | None
    dataset: str
    page_size: int
    window: Window = field(default_factory=Window)
    btql: bool = True

    def _parts(self, version: int | None) -> list[Part]:
        if self.container is None:
            return []
        if version is None:
            return self.container.parts
        parts = self.container.versions.get(str(version))
        if parts is None:
            raise ApiError(
                side=SIDE,
                method="READ",
                path=f"dataset {self.dataset}",
                status=404,
                message=f"dataset version {version} is not in the export",
            )
        return parts

    async def _latest(self, parts: list[Part]) -> dict[str, tuple[int, str]]:
        """id -> (ordinal of its latest line, its key), for the ids live and in the window."""
        latest: dict[str, tuple[int, str]] = {}
        ordinal = -1
        async for line in _scan(self.folder, parts):
            ordinal += 1
            row_id = str(line.row.get("id"))
            if line.row.get("_object_delete") or not self.window.admits(line.row):
                latest.pop(row_id, None)
            else:
                latest[row_id] = (ordinal, line.key)
        return latest

    async def ids(self, version: int | None) -> tuple[set[str], str | None]:
        latest = await self._latest(self._parts(version))
        last = max((key for _, key in latest.values()), default=None)
        return set(latest), last

    async def rows(self, version: int | None, since: int | None) -> AsyncIterator[list[dict[str, Any]]]:
        parts = self._parts(version)
        wanted = {ordinal for ordinal, _ in (await self._latest(parts)).values()}
        page: list[dict[str, Any]] = []
        for ordinal, line in enumerate(_lines(self.folder, parts)):
            if ordinal not in wanted:
                continue
            if since is not None and _xact(line.row) <= since:
                continue
            page.append(line.row)
            if len(page) >= self.page_size:
                yield page
                page = []
        if page:
            yield page

    async def any_row(self, version: int) -> dict[str, Any] | None:
        async for page in self.rows(version, None):
            return page[0]
        return None


def _xact(row: dict[str, Any]) -> int:
    value = str(row.get("_xact_id") or "0")
    return int(value) if value.isdigit() else 0


class FileBlob:
    """An attachment's bytes from the export, in 64 KiB chunks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        self._handle = self.path.open("rb")
        while chunk := self._handle.read(CHUNK):
            yield chunk
        await self.aclose()

    async def aclose(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class FolderSource:
    """The `Source` an export folder is. Construct it from a `check`ed manifest (`open_folder`)."""

    side = SIDE
    shares_reads = False  # a folder's containers are files of their own: nothing to share

    def __init__(
        self, folder: Path, manifest: Manifest, objects: dict[str, list[dict[str, Any]]] | None = None
    ) -> None:
        """`objects` (per kind) stand in for objects/ when a foreign folder has none (bt sync)."""
        self.folder = folder
        self.manifest = manifest
        self.stats = ClientStats()  # no requests: the report shows zero
        self._containers = {(c.kind, c.id): c for c in manifest.containers}
        self._by_id = {c.id: c for c in manifest.containers}
        self._objects: dict[str, list[dict[str, Any]]] = dict(objects or {})
        self._given = objects is not None
        self._counting = asyncio.Semaphore(1)
        self._index: dict[str, dict[str, dict[str, Any]]] = {}
        self._unreadable: dict[str, list[Unreadable]] = {}
        for entry in manifest.unreadable:
            self._unreadable.setdefault(entry.type, []).append(entry)

    def __repr__(self) -> str:
        return f"FolderSource({self.folder})"

    def settings_for(self, settings: Settings) -> Settings:
        """The export's selection applies unless the run gives its own: its time window (objects
        outside it were exported so that references resolve, their rows were not), and its
        resources and projects (types read whatever the selection, like projects, are exported
        whole: without this an import would bring the projects the export left out)."""
        chosen = self.manifest.selection
        update: dict[str, Any] = {
            name: parse_time(chosen[key])
            for name, key in (
                ("migration_created_after", "created_after"),
                ("migration_created_before", "created_before"),
            )
            if getattr(settings, name) is None and chosen.get(key)
        }
        for name, key in (("migration_resources", "resources"), ("migration_projects", "projects")):
            if not getattr(settings, name) and chosen.get(key):
                update[name] = list(chosen[key])
        return settings.model_copy(update=update) if update else settings

    def describe(self) -> str:
        return str(self.folder)

    # --- objects ------------------------------------------------------------------------------

    def _json(self, rel: str) -> Any:
        if rel not in self.manifest.files:  # absent (integrity refuses unlisted files on disk)
            return None
        try:
            return orjson.loads((self.folder / rel).read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            raise ArchiveError(f"{rel}: not readable as JSON ({str(error).splitlines()[0]})") from None

    def _list(self, rel: str) -> list[dict[str, Any]]:
        data = self._json(rel)
        if isinstance(data, dict) and isinstance(data.get("objects"), list):
            data = data["objects"]
        if data is None:
            return []
        if not isinstance(data, list) or not all(isinstance(obj, dict) for obj in data):
            raise ArchiveError(f"{rel}: not a JSON list of objects")
        return data

    def _kind(self, kind: str) -> list[dict[str, Any]]:
        if kind not in self._objects and not self._given:
            self._objects[kind] = self._list(objects_path(kind))
        return self._objects.get(kind, [])

    def _refuse_unreadable(self, rt: ResourceType, owner: str | None = None) -> None:
        """What the export could not read fails here as the live listing failed then. An entry
        for one owner ("views of project P") fails that owner's listing only."""
        for entry in self._unreadable.get(rt.name) or self._unreadable.get(rt.kind) or []:
            one_owner = entry.what.startswith(f"{rt.name} of ")
            if one_owner and entry.what != f"{rt.name} of {owner}":
                continue
            raise PermissionDeniedError(
                side=SIDE,
                method="GET",
                path=rt.listing_path,
                status=403,
                message=f"the export could not read {entry.what}: {entry.message}",
            )

    async def organizations(self) -> list[dict[str, Any]]:
        org = self._json(ORG_FILE)
        if org is None:  # a foreign folder: the org its manifest names
            org = {k: v for k, v in self.manifest.source_org.items() if k in ("id", "name")}
        return [org] if isinstance(org, dict) else list(org)

    async def list_type(
        self, rt: ResourceType, org_name: str | None, *, filtered: bool = True
    ) -> list[dict[str, Any]]:
        self._refuse_unreadable(rt)
        objects = self._kind(rt.kind)
        if filtered and rt.list_params:
            params = rt.list_params
            objects = [obj for obj in objects if all(obj.get(k) == v for k, v in params.items())]
        return list(objects)

    async def list_owned(self, rt: ResourceType, object_type: str, object_id: str) -> list[dict[str, Any]]:
        self._refuse_unreadable(rt, f"{object_type} {object_id}")
        return [
            obj
            for obj in self._kind(rt.kind)
            if obj.get("object_type") == object_type and obj.get("object_id") == object_id
        ]

    async def fetch_one(self, rt: ResourceType, object_id: str) -> dict[str, Any] | None:
        if rt.kind not in self._index:
            self._index[rt.kind] = {str(obj.get("id")): obj for obj in self._kind(rt.kind)}
        return self._index[rt.kind].get(object_id)

    async def users(self, org_name: str | None) -> list[dict[str, Any]]:
        return self._list(USERS_FILE)

    # --- rows ---------------------------------------------------------------------------------

    def _parts(self, kind: str, container: str) -> list[Part]:
        found = self._containers.get((kind, container))
        return found.parts if found is not None else []  # a container the export holds no rows of

    def _by_position(self, kind: str, container: str) -> bool:
        found = self._containers.get((kind, container))
        return found is not None and found.row_keys == "file_order"

    def rows(
        self, kind: str, container: str, page_size: int, window: Window, after_key: str | None = None
    ) -> FolderRows:
        parts, by_position = self._parts(kind, container), self._by_position(kind, container)
        return FolderRows(self.folder, parts, page_size, window, after_key, by_position)

    def shared_rows(
        self, kind: str, containers: list[str], page_size: int, window: Window, after_key: str | None
    ) -> FolderRows:
        raise NotImplementedError("a folder source does not share reads (shares_reads is False)")

    async def counts(self, kind: str, containers: list[str], window: Window) -> dict[str, int | None]:
        return {container: await self.count(kind, container, window) for container in containers}

    def fetch_rows(
        self, kind: str, container: str, page_size: int, seen: Any, window: Window, cursor: str | None
    ) -> FolderRows:
        # A folder always has keys: the keyset reader serves (the cursor is a key it gave).
        return self.rows(kind, container, page_size, window, cursor)

    async def row_ids(self, kind: str, container: str) -> set[str] | None:
        return None  # an export keeps rows deleted after it was made: it cannot tell what is gone

    async def count(
        self, kind: str, container: str, window: Window, after_key: str | None = None
    ) -> int | None:
        parts, by_position = self._parts(kind, container), self._by_position(kind, container)
        # One count at a time: reading a disk gains nothing from several, and each holds ids.
        async with self._counting:
            ids = DistinctIds()  # an id may be in several parts (an incremental export): counted once
            try:
                async for line in _scan(self.folder, parts, after_key, by_position=by_position):
                    if (after_key is None or line.key > after_key) and window.admits(line.row):
                        ids.add(str(line.row.get("id")))
                return ids.count()
            finally:
                ids.close()

    async def sample(
        self, kind: str, container: str, window: Window, after_key: str | None, limit: int
    ) -> list[dict[str, Any]]:
        async for page in self.rows(kind, container, max(1, limit), window, after_key).pages():
            return page.rows
        return []

    async def by_ids(self, kind: str, container: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        wanted = set(ids)
        found: dict[str, dict[str, Any]] = {}
        async for line in _scan(self.folder, self._parts(kind, container)):
            row_id = str(line.row.get("id"))
            if row_id in wanted:
                found[row_id] = line.row  # a later part's version is the newer one
        return found

    def snapshots(self, dataset: str, page_size: int, window: Window) -> FolderSnapshots:
        return FolderSnapshots(self.folder, self._by_id.get(dataset), dataset, page_size, window)

    # --- attachments --------------------------------------------------------------------------

    async def attachment(self, ref: dict[str, Any], org_id: str) -> tuple[FileBlob, int | None]:
        key = str(ref.get("key"))
        entry = self.manifest.attachments.get(key)
        if entry is None:
            raise DownloadRefused(
                "", f"attachment {key} is not in the export (it was exported without --copy-attachments)"
            )
        return FileBlob(self.folder / entry.path), entry.bytes


def open_folder(path: Path) -> FolderSource:
    """The folder as a source, once `check` has verified every file in it."""
    return FolderSource(path, check(path))


def open_source(path: Path, *, project: str | None = None, name: str | None = None) -> FolderSource:
    """An export folder (checked), or a `bt sync pull` folder presented as one container named
    `name` in project `project` (bt records no checksums: its rows are parsed instead)."""
    pulled = btsync.detect(path)
    if pulled is None:
        if project or name:
            raise ArchiveError(
                f"{path}: --into-project and --into name the container of a bt sync pull folder"
            )
        return open_folder(path)
    if not project:
        raise ArchiveError(f"{path}: a bt sync pull folder: name the destination project with --into-project")
    manifest, objects = btsync.synthesize(pulled, project_name=project, container_name=name)
    return FolderSource(pulled.root, manifest, objects)
