"""Everything one run shares: clients, state, inventories, options, and the id resolver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.client import ApiClient
from braintrust_migrate.engine import narrate
from braintrust_migrate.engine.graph import Key, Node, target_keys
from braintrust_migrate.engine.inventory import Inventory, fetch_one, identity
from braintrust_migrate.engine.report import Outcome
from braintrust_migrate.engine.resources import RESOURCE_TYPES, ResourceType
from braintrust_migrate.engine.secrets_file import Secrets
from braintrust_migrate.engine.state import StateStore
from braintrust_migrate.engine.users import UserMap

KIND_TYPES: dict[str, ResourceType] = {}
for _rt in RESOURCE_TYPES:
    KIND_TYPES.setdefault(_rt.kind, _rt)

# A dry run's stand-in for the id an object would get: never sent to the destination.
PLACEHOLDER_PREFIX = "dry-run:"


def placeholder(kind: str, src_id: str) -> str:
    return f"{PLACEHOLDER_PREFIX}{kind}:{src_id}"


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX)


@dataclass
class Options:
    dry_run: bool = False
    overwrite: bool = False
    map_users: bool = False
    invite_users: bool = False
    fresh: bool = False


@dataclass
class RunContext:
    source: ApiClient
    dest: ApiClient
    state: StateStore
    run_id: str
    options: Options
    source_org: dict[str, Any]
    dest_org: dict[str, Any]
    source_org_name: str | None
    dest_org_name: str | None
    secrets: Secrets
    users: UserMap
    src_inv: Inventory
    dst_inv: Inventory
    nodes: dict[Key, Node] = field(default_factory=dict)
    known: dict[Key, str] = field(default_factory=dict)  # dest ids settled in this run
    outcomes: list[Outcome] = field(default_factory=list)
    # Source objects the time window leaves out (experiments): references to them are dropped.
    outside_window: set[Key] = field(default_factory=set)
    _lookups: dict[Key, str | None] = field(default_factory=dict)
    _source_kinds: dict[str, str] | None = None

    def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        narrate.object_outcome(outcome, self.options.dry_run)
        if not self.options.dry_run:  # a dry run leaves the state as it found it
            self.state.record_outcome(self.run_id, outcome.kind, outcome.source_id, outcome.to_dict())

    def outside(self, kind: str | None, src_id: str) -> bool:
        """Whether the target is a source object the time window excludes from this run."""
        return any(key in self.outside_window for key in target_keys(kind, src_id))

    # id resolution
    def source_kind(self, object_id: str) -> str | None:
        """The kind of a source-org object id (None for ids that are not the source org's)."""
        if self._source_kinds is None:
            kinds = {oid: kind for kind, objects in self.src_inv.objects.items() for oid in objects}
            kinds.update({src_id: kind for kind, src_id in self.nodes})
            for role in self.src_inv.of("role"):
                if role.get("org_id") is None:
                    kinds.pop(role["id"], None)  # system roles are global, not the source org's
            kinds[self.source_org["id"]] = "organization"
            self._source_kinds = kinds
        return self._source_kinds.get(object_id)

    def peek(self, kind: str | None, src_id: str) -> str | None:
        """A destination id known now, without waiting or network: this run, then earlier runs."""
        if kind == "organization":
            return self.dest_org["id"] if src_id == self.source_org["id"] else None
        if kind == "user":
            return self.users.dest_id(src_id)
        if kind == "role":
            system = self._system_role(src_id)
            if system is not None:
                return system or None
        for key in target_keys(kind, src_id):
            if key in self.known:
                return self.known[key]
        for key in target_keys(kind, src_id):
            if key in self.nodes:
                continue  # pending in this run: the state may point at a deleted object
            mapping = self.state.mapping(*key)
            if mapping and mapping.dest_id and self._dest_exists(key[0], mapping.dest_id):
                return mapping.dest_id
        return None

    def _system_role(self, src_id: str) -> str | None:
        """'' when src_id is a system role absent from the destination; None when not a system role."""
        role = self.src_inv.get("role", src_id)
        if role is None or role.get("org_id") is not None:
            return None
        for candidate in self.dst_inv.of("role"):
            if candidate.get("org_id") is None and candidate.get("name") == role.get("name"):
                return str(candidate["id"])
        return ""

    def _dest_exists(self, kind: str, dest_id: str) -> bool:
        if kind in self.dst_inv.objects:
            return dest_id in self.dst_inv.objects[kind]
        return True

    async def resolve(self, kind: str | None, src_id: str) -> str | None:
        """Like peek, then by identity in the destination for targets outside this run."""
        found = self.peek(kind, src_id)
        if found or kind is None or kind in ("organization", "user"):
            return found
        keys = target_keys(kind, src_id)
        if any(key in self.nodes for key in keys):
            return None  # part of this run but not (yet) migrated
        cache_key = keys[0]
        if cache_key not in self._lookups:
            self._lookups[cache_key] = await self._lookup_by_identity(keys)
        return self._lookups[cache_key]

    async def _lookup_by_identity(self, keys: tuple[Key, ...]) -> str | None:
        for kind, src_id in keys:
            rt = KIND_TYPES.get(kind)
            if rt is None:
                continue
            obj = self.src_inv.get(kind, src_id) or await fetch_one(self.source, rt, src_id)
            if obj is None:
                continue
            probe = dict(obj)
            if rt.scope == "project" and obj.get("project_id"):
                dest_project = await self.resolve("project", obj["project_id"])
                if dest_project is None:
                    return None
                probe["project_id"] = dest_project
            match = self.dst_inv.find(rt, identity(rt, probe))
            if match is not None:
                return str(match["id"])
        return None
