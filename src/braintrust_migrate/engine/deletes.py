"""--sync-deletes: what this tool put in the destination and the source no longer has is deleted.

Only ever what the tool itself made: objects whose mapping says it CREATED them (never one it
adopted because an equal one was there already) and rows whose ids it recorded as written
(events/state.py `copied_rows`, never rows an application logged into the destination). A source
object counts as gone only when absent from a complete listing of a selected type in a selected
project; a listing the key could not read proves nothing. An object is left alone (and reported)
when the destination changed it since we wrote it, when another pair's state under the same
state root maps it too (a consolidation shares it), or when deleting it would cascade to
destination objects or rows the tool did not make. Children go before parents. A dry run lists
the same decisions and writes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.client import ApiError
from braintrust_migrate.config import Settings
from braintrust_migrate.engine.checksum import checksum
from braintrust_migrate.engine.context import RunContext
from braintrust_migrate.engine.events.state import EventState
from braintrust_migrate.engine.events.writer import Inserter, encode
from braintrust_migrate.engine.report import Outcome
from braintrust_migrate.engine.resources import (
    EVENT_STREAMS,
    PROJECT_TYPE,
    RESOURCE_TYPES,
    STREAMS,
    EventStream,
    ResourceType,
)
from braintrust_migrate.engine.state import Mapping as IdMapping
from braintrust_migrate.engine.statedir import sibling_dest_ids
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.source.live import LiveSource

log = get_logger(__name__)

# Containers whose deletion takes their rows and contents with them (checked before deleting).
CONTAINER_KINDS = {stream.container: stream.kind for stream in EVENT_STREAMS}


@dataclass
class Deletions:
    """One delete pass: objects deleted (a dry run: to delete), candidates left alone, rows per container."""

    dry_run: bool = False
    objects: list[Outcome] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, later: Deletions) -> Deletions:
        """A later pass (follow mode) added: what it deleted too; what is kept is its view."""
        self.objects += later.objects
        self.rows += later.rows
        self.kept = later.kept
        self.notes = list(dict.fromkeys(self.notes + later.notes))
        return self

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for outcome in self.objects:
            if outcome.action == "deleted":
                counts[outcome.type] = counts.get(outcome.type, 0) + 1
        return {
            "dry_run": self.dry_run,
            "objects": counts,
            "objects_deleted": [
                {
                    "type": o.type,
                    "name": o.name,
                    "project": o.project,
                    "source_id": o.source_id,
                    "dest_id": o.dest_id,
                }
                for o in self.objects
                if o.action == "deleted"
            ],
            "failed": [o.to_dict() for o in self.objects if o.action == "failed"],
            "kept": self.kept,
            "rows": self.rows,
            "rows_deleted": sum(r["rows_deleted"] for r in self.rows),
            "notes": self.notes,
        }


def _eligible(types: Iterable[ResourceType], source_live: bool, windowed: bool) -> dict[str, ResourceType]:
    """The kinds whose org-wide source listing tells for sure what exists (one type per kind,
    unfiltered, not a part of another object; per-owner types go with their owner's cascade)."""
    per_kind: dict[str, int] = {}
    for rt in RESOURCE_TYPES:
        if rt.facet_of is None:
            per_kind[rt.kind] = per_kind.get(rt.kind, 0) + 1
    chosen = {}
    for rt in types:
        if rt.facet_of or rt.per_owner or rt.list_params or rt.system or per_kind.get(rt.kind) != 1:
            continue
        if rt.windowed and windowed and not source_live:
            continue  # an export made with a time window holds only part of these
        chosen[rt.kind] = rt
    return chosen


def _rank(kind: str) -> int:
    # Children before parents: a project's contents, then containers, then projects.
    return 2 if kind == PROJECT_TYPE.kind else 1 if kind in CONTAINER_KINDS else 0


class DeletePass:
    def __init__(
        self,
        ctx: RunContext,
        settings: Settings,
        types: Iterable[ResourceType],
        streams: Iterable[EventStream],
        projects: Mapping[str, Any],
    ) -> None:
        self.ctx, self.settings = ctx, settings
        self.types, self.streams, self.projects = list(types), list(streams), projects
        self.result = Deletions(dry_run=ctx.options.dry_run)
        self.events = EventState(ctx.state)
        self.source_live = isinstance(ctx.source, LiveSource)
        self.created = {m.dest_id for m in ctx.state.mappings() if m.created_by_tool and m.dest_id}
        self.project_src = {m.dest_id: m.src_id for m in ctx.state.mappings(PROJECT_TYPE.kind) if m.dest_id}

    async def run(self) -> Deletions:
        shared = sibling_dest_ids(self.ctx.state.path.parent)
        if shared is None:
            self.result.notes.append(
                "another pair's state under the state root is unreadable: no object deleted"
            )
        else:
            await self._objects(shared)
        await self._rows()
        return self.result

    # objects
    def _candidates(self) -> list[tuple[ResourceType, IdMapping]]:
        s, inv = self.settings, self.ctx.src_inv
        window = bool(s.migration_created_after or s.migration_created_before)
        eligible = _eligible(self.types, self.source_live, window)
        unreadable = {u.rt.kind for u in inv.unreadable}
        found = []
        for mapping in self.ctx.state.mappings():
            rt = eligible.get(mapping.kind)
            if rt is None or not mapping.created_by_tool or not mapping.dest_id or rt.kind in unreadable:
                continue
            if mapping.src_id not in inv.objects.get(rt.kind, {}):
                found.append((rt, mapping))
        return sorted(found, key=lambda pair: _rank(pair[0].kind))

    def _selected(self, rt: ResourceType, dest: dict[str, Any]) -> bool:
        """Whether the gone source object was in a selected project (org objects: always)."""
        every = not self.settings.migration_projects
        if rt.kind == PROJECT_TYPE.kind:
            return every  # a named project that has gone stops the run before (unknown project)
        if not rt.in_project:
            return True
        src_project = self.project_src.get(str(dest.get(rt.owner or "project_id") or ""))
        if src_project is None:
            return False
        if src_project in self.projects:
            return True
        return every and self.ctx.src_inv.get(PROJECT_TYPE.kind, src_project) is None

    async def _objects(self, shared: set[str]) -> None:
        ctx = self.ctx
        for rt, mapping in self._candidates():
            dest = await ctx.dest_view.fetch_one(rt, mapping.dest_id)
            if dest is None or dest.get("deleted_at"):
                if not ctx.options.dry_run:  # gone already (by hand, or with its parent)
                    ctx.state.forget_mapping(mapping.kind, mapping.src_id)
                continue
            if not self._selected(rt, dest):
                continue
            why = await self._keep_reason(rt, mapping, dest, shared)
            if why:
                self.result.kept.append(
                    {
                        "type": rt.name,
                        "name": rt.display_name(dest),
                        "dest_id": mapping.dest_id,
                        "reason": why,
                    }
                )
                continue
            outcome = Outcome(
                type=rt.name,
                kind=rt.kind,
                name=rt.display_name(dest),
                source_id=mapping.src_id,
                action="deleted",
                project=self._project_name(rt, dest),
                dest_id=mapping.dest_id,
            )
            if not ctx.options.dry_run:
                try:
                    await self._delete(rt, dest)
                except ApiError as error:
                    outcome.action, outcome.reason, outcome.error = "failed", "delete_failed", error.to_dict()
                else:
                    ctx.state.forget_mapping(mapping.kind, mapping.src_id)
            self.result.objects.append(outcome)

    async def _keep_reason(
        self, rt: ResourceType, mapping: IdMapping, dest: dict[str, Any], shared: set[str]
    ) -> str | None:
        if mapping.dest_checksum is None or checksum(rt.body(dest)) != mapping.dest_checksum:
            return "changed_in_destination"
        if mapping.dest_id in shared:
            return "shared_with_another_pair"
        if rt.kind in CONTAINER_KINDS and await self._holds_others(rt, mapping):
            return "would_delete_what_the_tool_did_not_make"
        return None

    async def _holds_others(self, rt: ResourceType, mapping: IdMapping) -> bool:
        """Whether deleting this container would take objects or rows the tool did not write."""
        dest_id, inv = mapping.dest_id, self.ctx.dst_inv
        if rt.kind == PROJECT_TYPE.kind:
            for kind, objects in inv.objects.items():
                for obj in objects.values():
                    if obj.get("project_id") == dest_id and kind != rt.kind and obj["id"] not in self.created:
                        return True
        stream_kind = CONTAINER_KINDS[rt.kind]
        present = await self.ctx.dest_view.row_ids(stream_kind, dest_id)
        if present is None:
            return True  # cannot tell: keep it
        return bool(present - self.events.copied(f"{stream_kind}:{mapping.src_id}"))

    async def _delete(self, rt: ResourceType, dest: dict[str, Any]) -> None:
        body = None
        if rt.per_owner:  # e.g. DELETE /v1/view/{id} takes its owner in the body
            body = {"object_type": dest.get("object_type"), "object_id": dest.get("object_id")}
        await self.ctx.dest.delete_json(f"{rt.path}/{dest['id']}", body)
        self.ctx.dst_inv.remove(rt, dest)

    def _project_name(self, rt: ResourceType, dest: dict[str, Any]) -> str | None:
        if not rt.in_project:
            return None
        project = self.ctx.dst_inv.get(PROJECT_TYPE.kind, str(dest.get("project_id") or ""))
        return str(project.get("name")) if project else None

    # rows
    async def _rows(self) -> None:
        ctx = self.ctx
        kinds = {stream.kind for stream in self.streams}
        for stream, kind, src_id, dest_id in self.events.streams_of():
            spec = STREAMS.get(kind)
            if kind not in kinds or spec is None or (spec.container, src_id) not in ctx.nodes:
                continue  # not a container this run selects
            if ctx.peek(spec.container, src_id) != dest_id:
                continue  # its rows went to a destination container that is no longer its own
            source_ids = await ctx.source.row_ids(kind, src_id)
            if source_ids is None:
                self.result.notes.append(
                    f"{kind} {src_id}: {ctx.source.describe()} cannot tell which rows are gone; no row deleted"
                )
                continue
            gone = sorted(self.events.copied(stream) - source_ids)
            if not gone:
                continue
            present = set(await ctx.dest_view.by_ids(kind, dest_id, gone))
            to_delete = [row_id for row_id in gone if row_id in present]
            if not ctx.options.dry_run:
                self.events.forget_copied(stream, [r for r in gone if r not in present])
            deleted = (
                len(to_delete) if ctx.options.dry_run else await self._delete_rows(kind, dest_id, to_delete)
            )
            if not ctx.options.dry_run:
                self.events.forget_copied(stream, to_delete[:deleted])
            if to_delete:
                node = ctx.nodes[(spec.container, src_id)]
                self.result.rows.append(
                    {
                        "type": spec.report_type,
                        "container": kind,
                        "name": node.name,
                        "project": node.project or node.name,
                        "source_id": src_id,
                        "dest_id": dest_id,
                        "rows_deleted": deleted,
                        "rows_failed": len(to_delete) - deleted,
                    }
                )

    async def _delete_rows(self, kind: str, dest_id: str, ids: list[str]) -> int:
        s = self.settings
        inserter = Inserter(
            self.ctx.dest,
            kind,
            dest_id,
            max_rows=s.migration_insert_batch_rows,
            max_bytes=s.migration_insert_max_bytes,
        )
        done = 0
        items = [encode({"id": row_id, "_object_delete": True}, {}) for row_id in ids]
        for batch in inserter.batches(items):
            with contextlib.suppress(ApiError):
                result = await inserter.send(batch)
                done += len(result.written)
                if result.failed:
                    break
        return done


async def sync_deletes(
    ctx: RunContext,
    settings: Settings,
    types: Iterable[ResourceType],
    streams: Iterable[EventStream] = EVENT_STREAMS,
    projects: Mapping[str, Any] | None = None,
) -> Deletions:
    """One delete pass over the run's selection (see the module text). A dry run only lists."""
    chosen = projects if projects is not None else {p["id"]: p for p in ctx.src_inv.of(PROJECT_TYPE.kind)}
    return await DeletePass(ctx, settings, types, streams, chosen).run()
