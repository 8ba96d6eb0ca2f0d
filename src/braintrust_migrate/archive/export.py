"""`export --to DIR`: an org (or a selection of it) written to a folder (archive/layout.py).

Selection is a migration's (engine/selection.py). Objects are written whole per kind (not
window-filtered: the manifest records the window and import applies it); rows stream page by
page into part files, each closed atomically and recorded in the resume journal
(archive/parts.py), so a re-run goes on after the last recorded part, and a later export
into the same folder appends only what is new. The manifest is written last."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from braintrust_migrate import __version__
from braintrust_migrate.archive import blobs, layout
from braintrust_migrate.archive.layout import (
    AttachmentEntry,
    Compression,
    Container,
    FileEntry,
    Manifest,
    NeedsValue,
    Part,
    Unreadable,
)
from braintrust_migrate.archive.parts import ClosedPart, PartWriter
from braintrust_migrate.archive.resume import Key, Progress, check_folder, prepare_folder
from braintrust_migrate.client import ApiError
from braintrust_migrate.config import ConfigError, Settings
from braintrust_migrate.engine.events.attachments import attachment_refs
from braintrust_migrate.engine.events.stage import pinned_versions
from braintrust_migrate.engine.events.stream import ByteBudget
from braintrust_migrate.engine.graph import Node
from braintrust_migrate.engine.inventory import ALL_LISTABLE, Inventory, load_inventory, load_owned
from braintrust_migrate.engine.resources import (
    RESOURCE_TYPES,
    EventStream,
)
from braintrust_migrate.engine.scope import owner_objects
from braintrust_migrate.engine.selection import (
    build_nodes,
    run_streams,
    run_types,
    selected_names,
    selected_projects,
)
from braintrust_migrate.engine.statedir import StateLock, make_private_dirs
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.orgs import choose_org
from braintrust_migrate.source.live import LiveSource, open_live
from braintrust_migrate.source.reader import NoBtql, Window
from braintrust_migrate.source.snapshots import PINNED_STREAM
from braintrust_migrate.urlguard import DownloadRefused

log = get_logger(__name__)
T = TypeVar("T")

SECRET_FIELDS: dict[str, set[str]] = {}
for _rt in RESOURCE_TYPES:
    if _rt.secret is not None:
        SECRET_FIELDS.setdefault(_rt.kind, set()).add(_rt.secret.field)


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    counts: dict[str, int]
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class _Spec:
    kind: str
    id: str
    name: str
    project: str | None
    pins: list[int]


async def export_org(
    settings: Settings,
    to: Path,
    *,
    compression: Compression = "none",
    fresh: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> ExportResult:
    if compression not in layout.SUFFIX:
        # The CLI's words (a library caller's `compression=` is the same choice).
        raise ConfigError(f"--compress {compression!r}: allowed: {', '.join(layout.SUFFIX)}")
    async with open_live(settings, "source") as source:
        return await _Exporter(settings, Path(to), compression, source, on_event).run(fresh=fresh)


async def _all(coros: Iterable[Awaitable[T]]) -> list[T]:
    """Every coroutine at once; the first failure (or a cancel) cancels the others."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _Exporter:
    def __init__(
        self,
        settings: Settings,
        root: Path,
        compression: Compression,
        source: LiveSource,
        on_event: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.s, self.root, self.compression, self.source = settings, root, compression, source
        self.on_event = on_event
        self.window = Window(settings.migration_created_after, settings.migration_created_before)
        self.budget = ByteBudget(settings.migration_max_bytes_in_flight)
        self.failures: list[str] = []
        self.refs: dict[str, dict[str, Any]] = {}  # attachment key -> a reference to it
        self.done = Progress()
        self.raw_bytes = 0

    # ------------------------------------------------------------------ the folder

    # ------------------------------------------------------------------ the run

    async def run(self, *, fresh: bool) -> ExportResult:
        s, source = self.s, self.source
        org = choose_org(await source.organizations(), s.bt_source_org_name, source.side)
        self.org = org
        selection = self._selection()
        check_folder(self.root, org, self.compression, selection, fresh)
        # Exports hold an org's data: the folder is private, and one export writes it at a time.
        make_private_dirs(self.root / layout.WORK_DIR)
        lock = StateLock(self.root / layout.WORK_DIR, what="export", flag="--to")
        lock.acquire()
        try:
            self.journal, self.done = prepare_folder(self.root, org, self.compression, selection, fresh)
            try:
                return await self._run(org)
            finally:
                self.journal.close()
        finally:
            lock.release()

    async def _run(self, org: dict[str, Any]) -> ExportResult:
        s, source = self.s, self.source
        selected = selected_names(s)
        types, streams = run_types(selected), run_streams(selected)
        listed = [rt for rt in ALL_LISTABLE if rt in types or rt.always_listed]
        inv = await load_inventory(source, s.bt_source_org_name, listed)
        projects = selected_projects(s, inv)
        for rt in types:
            if rt.per_owner:
                await load_owned(source, inv, rt, owner_objects(rt, inv, projects))
        # Objects are not window-filtered (import applies the window); containers are, like a migration's.
        unwindowed = s.model_copy(update={"migration_created_after": None, "migration_created_before": None})
        nodes = build_nodes(unwindowed, types, inv, projects)
        files: dict[str, FileEntry] = {}
        files |= self._write_file(layout.ORG_FILE, org)
        try:
            users = await source.users(s.bt_source_org_name)
        except ApiError as error:
            users = []
            self.failures.append(f"users not readable: {error.message}")
        files |= self._write_file(layout.USERS_FILE, users)
        counts, needs, object_files = self._write_objects(nodes.values(), inv, types, listed)
        files |= object_files
        specs = self._specs(build_nodes(s, types, inv, projects).values(), streams, inv)
        slots = asyncio.Semaphore(s.migration_max_concurrent_resources)

        async def one(spec: _Spec) -> Container:
            async with slots:
                return await self._container(spec)

        containers = await _all(one(spec) for spec in specs)
        if s.migration_copy_attachments:
            await self._download_attachments(org["id"])
        manifest = self._manifest(org, counts, containers, inv, needs, files)
        layout.write_atomic(self.root / layout.MANIFEST, layout.dump_json(manifest.model_dump(mode="json")))
        rows = sum(p.rows for c in containers for p in c.parts)
        version_rows = sum(p.rows for c in containers for ps in c.versions.values() for p in ps)
        log.info("export finished", folder=str(self.root), rows=rows, containers=len(containers))
        return ExportResult(
            self.root,
            manifest,
            {
                "objects": sum(counts.values()),
                "containers": len(containers),
                "parts": sum(len(c.parts) + sum(map(len, c.versions.values())) for c in containers),
                "rows": rows,
                "version_rows": version_rows,
                "attachments": len(manifest.attachments),
                "raw_bytes_this_run": self.raw_bytes,
            },
            self.failures,
        )

    # ------------------------------------------------------------------ objects

    def _write_file(self, rel: str, value: Any) -> dict[str, FileEntry]:
        data = layout.dump_json(value)
        layout.write_atomic(self.root / rel, data)
        return {rel: FileEntry(sha256=_sha(data), bytes=len(data))}

    def _write_objects(
        self, nodes: Iterable[Node], inv: Inventory, types: list[Any], listed: list[Any]
    ) -> tuple[dict[str, int], list[NeedsValue], dict[str, FileEntry]]:
        by_kind: dict[str, dict[str, dict[str, Any]]] = {}
        needs: list[NeedsValue] = []
        for rt in [*types, *listed]:
            if rt.facet_of is None:
                by_kind.setdefault(rt.kind, {})
        for rt in listed:
            if rt.always_listed:  # read whatever the selection: ids resolve through them
                by_kind[rt.kind].update({str(o["id"]): without_secrets(rt.kind, o) for o in inv.of(rt.kind)})
        for node in nodes:
            if node.rt.facet_of is not None:
                continue  # a facet is a part of its owner's object, written with it
            by_kind.setdefault(node.rt.kind, {})[str(node.src["id"])] = without_secrets(
                node.rt.kind, node.src
            )
            if node.rt.secret is not None:
                needs.append(
                    NeedsValue(
                        type=node.rt.name,
                        section=node.rt.secret.section,
                        name=node.name,
                        project=node.project,
                    )
                )
        files: dict[str, FileEntry] = {}
        for kind, objects in sorted(by_kind.items()):
            files |= self._write_file(layout.objects_path(kind), list(objects.values()))
        return {kind: len(objects) for kind, objects in by_kind.items()}, needs, files

    def _specs(self, nodes: Iterable[Node], streams: list[EventStream], inv: Inventory) -> list[_Spec]:
        """The stream containers to export (a project's own logs: the project), with their pins."""
        nodes = list(nodes)
        specs = []
        for stream in streams:
            pinned = pinned_versions(inv, stream)
            for node in nodes:
                if node.rt.kind != stream.container:
                    continue
                versions = pinned.get(node.src["id"], set()) if stream.kind == PINNED_STREAM else set()
                pins = sorted(int(v) for v in versions if v.isdigit())
                specs.append(
                    _Spec(stream.kind, str(node.src["id"]), node.name, node.project or node.name, pins)
                )
        return specs

    # ------------------------------------------------------------------ rows

    def _writer(self, key: Key) -> PartWriter:
        """A writer after the journalled parts; part files past them (never journalled) go."""
        kind, cid, version = key
        rel = layout.container_dir(kind, cid) if version is None else layout.version_dir(kind, cid, version)
        done = {Path(p["path"]).name for p in self.done.parts.get(key, [])}
        folder = self.root / rel
        if folder.exists():
            for path in folder.glob(f"{layout.PART_PREFIX}*"):
                if path.is_file() and path.name not in done:
                    path.unlink()
        return PartWriter(self.root, rel, self.compression, len(done) + 1)

    def _closed(self, key: Key, part: ClosedPart | None) -> None:
        if part is None:
            return
        entry = {"event": "part", "kind": key[0], "id": key[1], "version": key[2], **part.record()}
        self.journal.append(entry)
        self.done.parts.setdefault(key, []).append(entry)
        self.raw_bytes += part.raw_bytes
        log.debug("part written", path=part.path, rows=part.rows, bytes=part.bytes)
        if self.on_event:
            self.on_event({"event": "part", "kind": key[0], "id": key[1], "version": key[2], **part.record()})

    async def _pages(self, key: Key, writer: PartWriter, pages: Any) -> None:
        """Rows of pages into the writer, at most the byte budget read and not yet written."""
        try:
            async for page in pages:
                rows, nbytes = (page.rows, page.nbytes) if hasattr(page, "rows") else (page, 0)
                held = await self.budget.hold(nbytes or sum(len(orjson.dumps(r)) for r in rows))
                try:
                    for row in rows:
                        if self.s.migration_copy_attachments:
                            for ref in attachment_refs(row):
                                if str(ref["key"]) not in self.done.attachments:
                                    self.refs.setdefault(str(ref["key"]), ref)
                        self._closed(key, writer.write(row))
                finally:
                    await self.budget.release(held)
            self._closed(key, writer.close())
        except BaseException:
            writer.abort()
            raise

    def _reset(self, key: Key) -> None:
        self.journal.append({"event": "reset", "kind": key[0], "id": key[1], "version": key[2]})
        self.done.parts[key] = []
        self.done.versions_done.discard(key)

    async def _container(self, spec: _Spec) -> Container:
        key: Key = (spec.kind, spec.id, None)
        page_size = self.s.migration_event_page_size
        ok = True
        try:
            last = self.done.last_key(key)
            writer = self._writer(key)
            try:
                await self._pages(
                    key, writer, self.source.rows(spec.kind, spec.id, page_size, self.window, last).pages()
                )
            except NoBtql:
                # /fetch has no keyset to resume from: the container is read again whole.
                self._reset(key)
                reader = self.source.fetch_rows(spec.kind, spec.id, page_size, _NoneSeen(), self.window, None)
                await self._pages(key, self._writer(key), reader.pages())
            for version in spec.pins:
                await self._version(spec, str(version))
            self.journal.append({"event": "container_done", "kind": spec.kind, "id": spec.id})
        except ApiError as error:
            ok = False
            self.failures.append(f"{spec.kind} {spec.name} ({spec.id}): rows not exported: {error.message}")
        return self._container_entry(spec, ok)

    async def _version(self, spec: _Spec, version: str) -> None:
        key: Key = (spec.kind, spec.id, version)
        if key in self.done.versions_done:
            return
        self._reset(key)  # an unfinished version is snapshotted again whole
        snapshots = self.source.snapshots(spec.id, self.s.migration_event_page_size, self.window)
        await self._pages(key, self._writer(key), snapshots.rows(int(version), None))
        self.journal.append({"event": "version_done", "kind": spec.kind, "id": spec.id, "version": version})
        self.done.versions_done.add(key)

    def _container_entry(self, spec: _Spec, ok: bool) -> Container:
        def parts(key: Key) -> list[Part]:
            return [
                Part(path=p["path"], rows=p["rows"], first_key=p.get("first_key"), last_key=p.get("last_key"))
                for p in self.done.parts.get(key, [])
            ]

        main = parts((spec.kind, spec.id, None))
        versions = {
            str(v): parts((spec.kind, spec.id, str(v)))
            for v in spec.pins
            if (spec.kind, spec.id, str(v)) in self.done.versions_done
        }
        last = next((p.last_key for p in reversed(main) if p.last_key), None)
        return Container(
            kind=spec.kind, id=spec.id, name=spec.name, project=spec.project,
            parts=main, versions=versions, last_key=last, complete=ok,
        )  # fmt: skip

    # ------------------------------------------------------------------ attachments

    async def _download_attachments(self, org_id: str) -> None:
        slots = asyncio.Semaphore(self.s.migration_max_concurrent_resources)

        async def one(key: str, ref: dict[str, Any]) -> None:
            async with slots:
                try:
                    cap = self.s.migration_attachment_max_bytes
                    entry = await blobs.download(self.source, self.root, key, ref, org_id, cap)
                    self.journal.append(entry)
                    self.done.attachments[key] = entry
                except (ApiError, DownloadRefused, blobs.TooLarge, OSError) as error:
                    text = error.message if isinstance(error, ApiError) else str(error)
                    self.failures.append(f"attachment {key}: not exported: {text}")

        await _all(one(key, ref) for key, ref in sorted(self.refs.items()))

    # ------------------------------------------------------------------ manifest

    def _selection(self) -> dict[str, Any]:
        after, before = self.s.migration_created_after, self.s.migration_created_before
        return {
            "resources": sorted(selected_names(self.s)),
            "projects": list(self.s.migration_projects),
            "created_after": after.isoformat() if after else None,
            "created_before": before.isoformat() if before else None,
        }

    def _manifest(
        self,
        org: dict[str, Any],
        counts: dict[str, int],
        containers: list[Container],
        inv: Inventory,
        needs: list[NeedsValue],
        files: dict[str, FileEntry],
    ) -> Manifest:
        for c in containers:
            for version, parts in [(None, c.parts), *c.versions.items()]:
                recorded = {p["path"]: p for p in self.done.parts.get((c.kind, c.id, version), [])}
                for part in parts:
                    entry = recorded[part.path]
                    files[part.path] = FileEntry(sha256=entry["sha256"], bytes=entry["bytes"], rows=part.rows)
        attachments: dict[str, AttachmentEntry] = {}
        for key, a in sorted(self.done.attachments.items()):
            attachments[key] = AttachmentEntry(
                path=a["path"],
                filename=a.get("filename"),
                content_type=a.get("content_type"),
                bytes=a["bytes"],
            )
            files[a["path"]] = FileEntry(sha256=a["sha256"], bytes=a["bytes"])
        return Manifest(
            tool_version=__version__,
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            source_org={"id": org["id"], "name": org.get("name"), "api_url": self.source.describe()},
            selection=self._selection(),
            compression=self.compression,
            copy_attachments=self.s.migration_copy_attachments,
            objects=counts,
            containers=containers,
            attachments=attachments,
            unreadable=[
                Unreadable(type=u.rt.name, what=u.what, message=u.error.message or "") for u in inv.unreadable
            ],
            needs_values=needs,
            files=dict(sorted(files.items())),
        )


class _NoneSeen:
    """/fetch's 'seen in an earlier run' set: a fallback read is always whole."""

    def has(self, row_id: str) -> bool:
        return False


def without_secrets(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    fields = SECRET_FIELDS.get(kind)
    return {k: v for k, v in obj.items() if k not in fields} if fields else obj


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
