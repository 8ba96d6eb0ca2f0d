"""Applying project renames (engine/names.py) to bodies, and the checks a rename needs first.

Only structural names are rewritten: a project's `name` and the fields refs.NAME_REFERENCES
declares. A renamed name inside free text (filters, URLs, descriptions) is reported, never changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from braintrust_migrate.config import ConfigError
from braintrust_migrate.engine.inventory import Inventory
from braintrust_migrate.engine.names import ProjectNames
from braintrust_migrate.engine.refs import find_name_slots as name_slots
from braintrust_migrate.engine.resources import PROJECT_TYPE
from braintrust_migrate.engine.same_org import mapped_projects
from braintrust_migrate.engine.state import StateStore

# Kinds whose own `name` is a project's name.
PROJECT_KINDS = frozenset({PROJECT_TYPE.kind})
TEXT_NOTE = "project_name_in_text"


class ProjectRenameError(ConfigError):
    """A rename that cannot work (a collision, an unknown name): one line, exit 2."""


def rename_body(kind: str, body: dict[str, Any], names: ProjectNames, source_names: Iterable[str]) -> None:
    """Rename `body` (an object of `kind`) in place: a project's name, and every name reference
    that names a project of the source org (selected or not) becomes its destination name."""
    if not names.active:
        return
    if kind in PROJECT_KINDS and isinstance(body.get("name"), str):
        body["name"] = names.dest(body["name"])
    known = set(source_names)
    for slot in name_slots(kind, body):
        if slot.value in known:
            slot.parent[slot.key] = names.dest(slot.value)


def text_mentions(
    kind: str, body: dict[str, Any], names: ProjectNames, source_names: Iterable[str]
) -> list[str]:
    """Notes `project_name_in_text: <path>` for strings of `body` (already renamed) that hold
    a renamed source project's name, as a word or as a URL's `/p/<name>`: left for the user."""
    renamed = sorted({n for n in source_names if n and names.renames(n)}, key=len, reverse=True)
    if not renamed:
        return []
    words = "|".join(re.escape(n) for n in renamed)
    urls = "|".join(re.escape("/p/" + quote(n)) for n in renamed)
    pattern = re.compile(rf"(?<!\w)(?:{words})(?!\w)|(?:{urls})(?![\w%])")
    skip = {(id(s.parent), s.key) for s in name_slots(kind, body)}
    if kind in PROJECT_KINDS:
        skip.add((id(body), "name"))
    notes: list[str] = []

    def walk(node: Any, path: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            here = (f"{path}.{key}" if isinstance(node, dict) else f"{path}[{key}]").lstrip(".")
            if isinstance(value, dict | list):
                walk(value, here)
            elif isinstance(value, str) and (id(node), key) not in skip and pattern.search(value):
                notes.append(f"{TEXT_NOTE}: {here}")

    walk(body, "")
    return notes


def check_map_keys(names: ProjectNames, source_names: Iterable[str], source: str = "source org") -> None:
    """(c) A map entry whose old name is no project of the source is most likely misspelt."""
    known = sorted(set(source_names))
    unknown = [old for old in names.mapping if old not in known]
    if unknown:
        shown = ", ".join(map(repr, known[:30])) + (" …" if len(known) > 30 else "")
        raise ProjectRenameError(
            f"--project-map / MIGRATION_PROJECT_MAP(_FILE): unknown project(s) "
            f"{', '.join(map(repr, unknown))}; projects in the {source}: {shown}"
        )


def check_collisions(
    names: ProjectNames,
    selected: Mapping[str, Mapping[str, Any]],
    dst_inv: Inventory,
    mapped: Mapping[str, str | None],
    *,
    merge_into_existing: bool = False,
    others: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Before any write: (a) two selected source projects must not get one destination name;
    (b) a renamed project must not land on a destination project of that name that this pair's
    id map does not give it (`mapped`: source project id -> dest id, '' for a create in flight),
    nor any project on one another source org's migration made (`others`: dest ids other pairs
    map), unless merge_into_existing."""
    by_dest: dict[str, list[str]] = {}
    for project in selected.values():
        by_dest.setdefault(names.dest(str(project.get("name"))), []).append(str(project.get("name")))
    for dest_name, sources in sorted(by_dest.items()):
        if len(sources) > 1:
            raise ProjectRenameError(
                f"--project-map/--project-prefix: source projects {', '.join(map(repr, sorted(sources)))} "
                f"would all be named {dest_name!r} in the destination"
            )
    if merge_into_existing:
        return
    dest_by_name = {p.get("name"): str(p["id"]) for p in dst_inv.of(PROJECT_TYPE.kind)}
    theirs = sorted(
        str(p.get("name"))
        for pid, p in selected.items()
        if dest_by_name.get(names.dest(str(p.get("name")))) in others
        and mapped.get(pid) not in (dest_by_name.get(names.dest(str(p.get("name")))), "")
    )
    if theirs:
        raise ProjectRenameError(
            f"source project(s) {', '.join(map(repr, theirs))} would land on destination projects of"
            " the same name that the migration of another source org into this destination created;"
            " give them other names with --project-map/--project-prefix, or pass --merge-into-existing"
        )
    for pid, project in selected.items():
        name = str(project.get("name"))
        existing = dest_by_name.get(names.dest(name))
        ours = mapped.get(pid)
        if not names.renames(name):
            continue
        if existing is not None and ours not in (existing, ""):
            raise ProjectRenameError(
                f"--project-map/--project-prefix: source project {name!r} would be renamed to "
                f"{names.dest(name)!r}, which already exists in the destination org; "
                "pass --merge-into-existing to merge into it, or choose another name"
            )


def source_project_names(inv: Inventory) -> frozenset[str]:
    return frozenset(str(p["name"]) for p in inv.of(PROJECT_TYPE.kind) if p.get("name"))


def check_run_renames(
    names: ProjectNames,
    src_inv: Inventory,
    selected: Mapping[str, Mapping[str, Any]],
    dst_inv: Inventory,
    state: StateStore,
    *,
    merge_into_existing: bool = False,
    others: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Every rename check of a run, from its inventories and this pair's id map (before any write)."""
    if names.active:
        check_map_keys(names, source_project_names(src_inv))
    mapped = mapped_projects(state, selected)
    check_collisions(names, selected, dst_inv, mapped, merge_into_existing=merge_into_existing, others=others)
