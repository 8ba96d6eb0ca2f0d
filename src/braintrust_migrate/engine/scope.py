"""Where an object belongs: its owner and its project, read from the two tables alone."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

from braintrust_migrate.engine.inventory import Inventory
from braintrust_migrate.engine.refs import POLYMORPHIC_KINDS, ref_at
from braintrust_migrate.engine.resources import BY_KIND, PROJECT_TYPE, SELF, SHARED_ID_KINDS, ResourceType


def owner_kind(rt: ResourceType, obj: Mapping[str, Any]) -> str | None:
    """The kind of the object `obj` belongs to (None: the org)."""
    if rt.owner is None or rt.owner == SELF:
        return None
    ref = ref_at(rt.kind, rt.owner)
    if ref is None:
        return None
    if ref.target:
        return ref.target
    if ref.type_field is None:
        return None
    return POLYMORPHIC_KINDS.get(str(obj.get(ref.type_field)))


def project_of(rt: ResourceType, obj: Mapping[str, Any], inv: Inventory, depth: int = 0) -> str | None:
    """The source project an object lives in (a project's is itself; None: outside every project)."""
    if rt.owner == SELF:
        return obj.get("id")
    kind = owner_kind(rt, obj)
    owner_id = obj.get(rt.owner or "")
    if kind is None or not owner_id:
        return None
    if kind == PROJECT_TYPE.kind:
        return str(owner_id)
    if depth > 3:
        return None
    for candidate in SHARED_ID_KINDS.get(kind, (kind,)):
        owner = inv.get(candidate, str(owner_id))
        if owner is not None and candidate in BY_KIND:
            return project_of(BY_KIND[candidate], owner, inv, depth + 1)
    return None


def selected(project: str | None, rt: ResourceType, projects: Container[str]) -> bool:
    """Whether an object whose project is `project` is in a selection of `projects`: objects outside
    every project always are; a project-scoped one without a known project never is."""
    return project in projects if rt.in_project or project is not None else True


def owner_objects(
    rt: ResourceType, inv: Inventory, projects: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """(object_type, object_id) of every listed object (in `projects`, when given) that may own
    objects of the per-owner type `rt`."""
    chosen = None if projects is None else set(projects)
    owners = []
    for object_type in sorted(rt.owner_types):
        kind = POLYMORPHIC_KINDS.get(object_type)
        if kind is None or kind not in BY_KIND:
            continue
        owner_rt = BY_KIND[kind]
        owners += [
            (object_type, str(obj["id"]))
            for obj in inv.of(kind)
            if chosen is None or project_of(owner_rt, obj, inv) in chosen
        ]
    return owners
