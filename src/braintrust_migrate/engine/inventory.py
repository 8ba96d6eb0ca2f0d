"""What exists on each side: objects listed once, indexed by id and by identity."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.client import ApiError, NotFoundError
from braintrust_migrate.client.errors import PermissionDeniedError
from braintrust_migrate.engine.resources import RESOURCE_TYPES, SELF, ResourceType
from braintrust_migrate.source import Source


def identity(rt: ResourceType, obj: dict[str, Any]) -> tuple[Any, ...]:
    """The key that makes an object unique in its scope, in the ids of `obj`'s own side."""
    key = tuple(obj.get(name) for name in rt.identity)
    if rt.owner not in (None, SELF) and rt.owner not in rt.identity:
        key = (obj.get(rt.owner), *key)
    return (rt.kind, *key)


@dataclass(frozen=True)
class Unreadable:
    """A listing the key was refused (403)."""

    rt: ResourceType
    what: str  # "all <type>" or "<type> of <owner>"
    error: ApiError


@dataclass
class Inventory:
    side: str
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    by_identity: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    # (kind, owner type, owner id) per-owner listings done: a second per-owner type of the same
    # owner is listed on its own.
    listed_owners: set[tuple[str, str, str]] = field(default_factory=set)
    # What this side's key may not list (403): reported as failed, the run goes on without it.
    unreadable: list[Unreadable] = field(default_factory=list)

    def add(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        self.objects[rt.kind][obj["id"]] = obj
        self.by_identity.setdefault(identity(rt, obj), obj)

    def remove(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        self.objects[rt.kind].pop(obj["id"], None)
        if self.by_identity.get(identity(rt, obj)) is obj:
            del self.by_identity[identity(rt, obj)]

    def get(self, kind: str, object_id: str) -> dict[str, Any] | None:
        return self.objects.get(kind, {}).get(object_id)

    def find(self, rt: ResourceType, key: tuple[Any, ...]) -> dict[str, Any] | None:
        return self.by_identity.get(key)

    def of(self, kind: str) -> Iterable[dict[str, Any]]:
        return self.objects.get(kind, {}).values()


def listings(types: Iterable[ResourceType]) -> list[tuple[ResourceType, bool]]:
    """One org-wide listing per kind (types sharing a kind share it, unfiltered when one of them
    takes every object); facets and types listed per owner have none of their own."""
    by_kind: dict[str, list[ResourceType]] = {}
    for rt in types:
        if rt.facet_of is None and not rt.per_owner:
            by_kind.setdefault(rt.kind, []).append(rt)
    return [(group[0], all(rt.list_params for rt in group)) for group in by_kind.values()]


async def load_inventory(source: Source, org_name: str | None, types: Iterable[ResourceType]) -> Inventory:
    """List every given type org-wide (those listed per owner excepted: see load_owned)."""
    inventory = Inventory(source.side)
    todo = listings(types)
    by_kind = {rt.kind: [t for t in types if t.kind == rt.kind] for rt, _ in todo}

    async def one(rt: ResourceType, filtered: bool) -> list[dict[str, Any]]:
        try:
            return await source.list_type(rt, org_name, filtered=filtered)
        except PermissionDeniedError as error:
            # The key may not read these: the run reports each type as failed and goes on.
            inventory.unreadable += [Unreadable(same, f"all {same.name}", error) for same in by_kind[rt.kind]]
            return []

    results = await asyncio.gather(*(one(rt, filtered) for rt, filtered in todo))
    for (rt, _), objects in zip(todo, results, strict=True):
        for obj in objects:
            inventory.add(rt, obj)
    return inventory


async def relist(source: Source, inventory: Inventory, org_name: str | None, rt: ResourceType) -> bool:
    """Read one type's objects again (a later phase sees what the run has written since); False
    when the key may not (recorded in `unreadable`)."""
    try:
        objects = await source.list_type(rt, org_name, filtered=False)
    except PermissionDeniedError as error:
        inventory.unreadable.append(Unreadable(rt, f"all {rt.name}", error))
        return False
    for old in list(inventory.of(rt.kind)):
        inventory.remove(rt, old)
    for obj in objects:
        inventory.add(rt, obj)
    return True


async def load_owned(
    source: Source,
    inventory: Inventory,
    rt: ResourceType,
    owners: Iterable[tuple[str, str]],
    *,
    again: bool = False,
) -> None:
    """Objects of a per-owner type for each (object_type, object_id) owner, added once (`again`:
    read anew, e.g. after a write the run did not see answered)."""
    todo = [owner for owner in owners if again or (rt.kind, *owner) not in inventory.listed_owners]

    async def one(object_type: str, object_id: str) -> None:
        try:
            found = await source.list_owned(rt, object_type, object_id)
        except NotFoundError:
            found = []
        except PermissionDeniedError as error:
            inventory.unreadable.append(Unreadable(rt, f"{rt.name} of {object_type} {object_id}", error))
            found = []
        for obj in found:
            inventory.add(rt, obj)
        inventory.listed_owners.add((rt.kind, object_type, object_id))

    await asyncio.gather(*(one(*owner) for owner in todo))


ALL_LISTABLE = tuple(rt for rt in RESOURCE_TYPES if not rt.per_owner and rt.facet_of is None)
PER_OWNER = tuple(rt for rt in RESOURCE_TYPES if rt.per_owner)
