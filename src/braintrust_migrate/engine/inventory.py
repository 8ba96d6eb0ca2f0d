"""What exists on each side: objects listed once, indexed by id and by identity."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.client import ApiClient, ApiError, NotFoundError
from braintrust_migrate.engine.resources import BY_NAME, RESOURCE_TYPES, VIEW_OBJECT_TYPES, ResourceType

PROJECT_SCOPED_FIELD = "project_id"
# View and env var identities carry their own owner (object_type, object_id).
SELF_SCOPED_KINDS = frozenset({"view", "env_var", "dataset_snapshot"})


def identity(rt: ResourceType, obj: dict[str, Any]) -> tuple[Any, ...]:
    """The key that makes an object unique in its scope, in the ids of `obj`'s own side."""
    key = tuple(obj.get(name) for name in rt.identity)
    if rt.scope == "project" and rt.kind not in SELF_SCOPED_KINDS:
        key = (obj.get(PROJECT_SCOPED_FIELD), *key)
    return (rt.kind, *key)


@dataclass
class Inventory:
    side: str
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    by_identity: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    listed_views: set[tuple[str, str]] = field(default_factory=set)

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


async def list_type(client: ApiClient, rt: ResourceType, org_name: str | None) -> list[dict[str, Any]]:
    params: dict[str, Any] = dict(rt.list_params or {})
    if rt.org_name_param and org_name:
        params["org_name"] = org_name
    return await client.list_all(rt.path, params, cursor=rt.cursor)


async def load_inventory(client: ApiClient, org_name: str | None, types: Iterable[ResourceType]) -> Inventory:
    """List every given type org-wide (views excluded: they are listed per object)."""
    inventory = Inventory(client.side)
    listable = [rt for rt in types if rt.kind != "view" and rt.name != "org_env_vars"]
    results = await asyncio.gather(*(list_type(client, rt, org_name) for rt in listable))
    for rt, objects in zip(listable, results, strict=True):
        for obj in objects:
            target = rt
            if rt.kind == "env_var" and obj.get("object_type") == "organization":
                target = BY_NAME["org_env_vars"]
            inventory.add(target, obj)
    return inventory


async def load_views(client: ApiClient, inventory: Inventory, owners: Iterable[tuple[str, str]]) -> None:
    """Views of each (object_type, object_id) owner, added to the inventory once."""
    rt = BY_NAME["views"]
    todo = [owner for owner in owners if owner not in inventory.listed_views]

    async def one(object_type: str, object_id: str) -> None:
        try:
            views = await client.list_all(rt.path, {"object_type": object_type, "object_id": object_id})
        except NotFoundError:
            views = []
        for view in views:
            inventory.add(rt, view)
        inventory.listed_views.add((object_type, object_id))

    await asyncio.gather(*(one(*owner) for owner in todo))


def view_owners(inventory: Inventory) -> list[tuple[str, str]]:
    owners = []
    for object_type, kind in VIEW_OBJECT_TYPES.items():
        owners.extend((object_type, obj["id"]) for obj in inventory.of(kind))
    return owners


async def fetch_one(client: ApiClient, rt: ResourceType, object_id: str) -> dict[str, Any] | None:
    try:
        return await client.get_json(f"{rt.path}/{object_id}")
    except NotFoundError:
        return None
    except ApiError as error:
        if error.status == 400:  # e.g. a malformed id: nothing to find
            return None
        raise


ALL_LISTABLE = tuple(rt for rt in RESOURCE_TYPES if rt.kind != "view")
