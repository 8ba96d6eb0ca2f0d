"""What a run migrates: the types and streams a selection names, the selected projects, and one
node per source object in them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from braintrust_migrate.config import ConfigError, Settings
from braintrust_migrate.engine.graph import Key, Node
from braintrust_migrate.engine.inventory import Inventory
from braintrust_migrate.engine.resources import (
    BY_KIND,
    EVENT_STREAMS,
    PROJECT_TYPE,
    RESOURCE_TYPES,
    SELECTABLE,
    STREAM_SELECTIONS,
    EventStream,
    ResourceType,
)
from braintrust_migrate.engine.scope import project_of, selected
from braintrust_migrate.source.reader import Window


class MigrationInputError(ConfigError):
    """A selection or org choice that cannot work; reported in one line, exit code 2."""


def selected_projects(settings: Settings, inv: Inventory) -> dict[str, dict[str, Any]]:
    projects = {p["id"]: p for p in inv.of(PROJECT_TYPE.kind)}
    wanted = settings.migration_projects
    if not wanted:
        return projects
    names = {p.get("name"): pid for pid, p in projects.items()}
    loose = {str(name).strip(): pid for name, pid in names.items()}
    # Exact names first; "A , B" style lists add spaces that names rarely have.
    chosen = {want: names.get(want) or loose.get(want.strip()) for want in wanted}
    unknown = [name for name, pid in chosen.items() if pid is None]
    if unknown:
        known = sorted(str(n) for n in names)
        shown = ", ".join(map(repr, known[:30])) + (" …" if len(known) > 30 else "")
        raise MigrationInputError(
            f"unknown project(s) {', '.join(map(repr, unknown))}; projects in the source org: {shown}"
        )
    return {pid: projects[pid] for pid in chosen.values() if pid}


def selected_names(settings: Settings) -> set[str]:
    """The type and stream names a run covers: the chosen ones (all by default), and the
    projects that hold them."""
    chosen = set(settings.migration_resources) or {rt.name for rt in SELECTABLE} | {*STREAM_SELECTIONS}
    return chosen | {PROJECT_TYPE.name}


def run_types(selected: set[str]) -> list[ResourceType]:
    """The types a selection migrates: those named, and the facets of those named."""
    chosen = {rt.name for rt in RESOURCE_TYPES if rt.name in selected}
    return [
        rt
        for rt in RESOURCE_TYPES
        if rt.name in chosen or (rt.facet_of and BY_KIND[rt.facet_of].name in chosen)
    ]


def run_streams(selected: set[str]) -> list[EventStream]:
    return [stream for stream in EVENT_STREAMS if stream.selected_as in selected]


def build_nodes(
    settings: Settings, types: Iterable[ResourceType], inv: Inventory, projects: dict[str, dict[str, Any]]
) -> dict[Key, Node]:
    """One node per source object the run migrates: of the given types, in the selected projects
    (objects outside every project always), in the time window for the types it selects."""
    nodes: dict[Key, Node] = {}
    window = Window(settings.migration_created_after, settings.migration_created_before)
    for rt in types:
        for obj in inv.of(rt.facet_of or rt.kind):
            if not rt.admits(obj) or (rt.windowed and not window.admits(obj)):
                continue
            if rt.facet_of and not rt.body(obj):
                continue  # nothing of this part to write
            project_id = project_of(rt, obj, inv)
            if not selected(project_id, rt, projects):
                continue
            name = projects[project_id].get("name") if project_id else None
            named = rt.in_project or rt.facet_of is not None  # a facet reports its project's name
            node = Node(rt, obj, name if named else None, project_id if rt.in_project else None)
            nodes[node.key] = node
    return nodes


def outside_window(
    settings: Settings, types: Iterable[ResourceType], inv: Inventory, projects: dict[str, dict[str, Any]]
) -> set[Key]:
    """Selected objects the time window leaves out: references to them are dropped, not failed."""
    window = Window(settings.migration_created_after, settings.migration_created_before)
    return {
        (rt.kind, obj["id"])
        for rt in types
        if rt.windowed
        for obj in inv.of(rt.kind)
        if selected(project_of(rt, obj, inv), rt, projects) and not window.admits(obj)
    }
