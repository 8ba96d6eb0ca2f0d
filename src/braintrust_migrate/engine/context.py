"""Everything one run shares: clients, state, inventories, options, and the id resolver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.client import ApiClient
from braintrust_migrate.engine import narrate
from braintrust_migrate.engine.batch import Batcher
from braintrust_migrate.engine.graph import Key, Node, target_keys
from braintrust_migrate.engine.inventory import Inventory, identity
from braintrust_migrate.engine.names import ProjectNames
from braintrust_migrate.engine.refs import ORG_KIND, USER_KIND, ref_at
from braintrust_migrate.engine.renames import rename_body, source_project_names
from braintrust_migrate.engine.report import Outcome
from braintrust_migrate.engine.resources import BY_KIND, RESOURCE_TYPES, SELF, ResourceType
from braintrust_migrate.engine.secrets_file import Secrets
from braintrust_migrate.engine.state import StateStore
from braintrust_migrate.engine.users import UserMap
from braintrust_migrate.source import Source

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
    merge_into_existing: bool = False  # a renamed project may land on one the destination has
    sync_deletes: bool = False  # delete what this tool created whose source is gone
    follow: bool = False  # after the copy, keep copying changes (cut-over)
    until_idle: float | None = None  # with follow: stop after this many seconds without a change


@dataclass(kw_only=True)
class RunContext:
    source: Source  # a live org or an export folder: read only
    dest: ApiClient
    dest_view: Source  # the destination's listings
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
    created: set[Key] = field(default_factory=set)  # objects this run created (empty when created)
    outcomes: list[Outcome] = field(default_factory=list)
    # Source objects the time window leaves out (experiments): references to them are dropped.
    outside_window: set[Key] = field(default_factory=set)
    # What each source project is called in the destination (--project-map/--project-prefix).
    names: ProjectNames = field(default_factory=ProjectNames)
    _source_project_names: frozenset[str] | None = None
    # Projects copied inside one org (engine/same_org.py): what is outside the copy is itself.
    same_org_copy: bool = False
    _lookups: dict[Key, str | None] = field(default_factory=dict)
    _source_kinds: dict[str, str] | None = None
    _batchers: dict[str, Batcher] = field(default_factory=dict)

    def batcher(self, rt: ResourceType) -> Batcher:
        """The one batcher of a type with a batch endpoint, shared by its writers."""
        if rt.name not in self._batchers:
            self._batchers[rt.name] = Batcher(self.dest, rt)
        return self._batchers[rt.name]

    def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.action == "created":
            self.created.add((outcome.kind, outcome.source_id))
        narrate.object_outcome(outcome, self.options.dry_run)
        if not self.options.dry_run:  # a dry run leaves the state as it found it
            self.state.record_outcome(self.run_id, outcome.kind, outcome.source_id, outcome.to_dict())

    def outside(self, kind: str | None, src_id: str) -> bool:
        """Whether the target is a source object the time window excludes from this run."""
        return any(key in self.outside_window for key in target_keys(kind, src_id))

    def source_project_names(self) -> frozenset[str]:
        """Names of every project of the source (selected or not): what a name reference may name."""
        if self._source_project_names is None:
            self._source_project_names = source_project_names(self.src_inv)
        return self._source_project_names

    def rename(self, kind: str, body: dict[str, Any]) -> None:
        """`body` with the run's project renames applied in place (engine/renames.py)."""
        if self.names.active:
            rename_body(kind, body, self.names, self.source_project_names())

    # id resolution
    def source_kind(self, object_id: str) -> str | None:
        """The kind of a source-org object id (None for ids that are not the source org's)."""
        if self._source_kinds is None:
            kinds = {oid: kind for kind, objects in self.src_inv.objects.items() for oid in objects}
            # A facet shares its owner's id: the id names the owner.
            kinds.update({n.src["id"]: n.rt.kind for n in self.nodes.values() if n.rt.facet_of is None})
            for rt in RESOURCE_TYPES:
                for obj in self.src_inv.of(rt.kind):
                    if rt.is_system(obj):
                        kinds.pop(obj["id"], None)  # the platform's, in every org: not the source org's
            kinds[self.source_org["id"]] = ORG_KIND
            self._source_kinds = kinds
        return self._source_kinds.get(object_id)

    def peek(self, kind: str | None, src_id: str) -> str | None:
        """A destination id known now, without waiting or network: this run, then earlier runs."""
        if kind == ORG_KIND:
            return self.dest_org["id"] if src_id == self.source_org["id"] else None
        if kind == USER_KIND:
            return src_id if self.same_org_copy else self.users.dest_id(src_id)
        system = self._system_twin(kind, src_id)
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
        if self.same_org_copy and self._outside_copy(kind, src_id):
            return src_id
        return None

    def _outside_copy(self, kind: str | None, src_id: str) -> bool:
        """A same-org copy's target that is not copied (an org object, an unselected project's)
        and exists in the org: the copy names the very object."""
        keys = target_keys(kind, src_id)
        if any(key in self.nodes or key in self.outside_window for key in keys):
            return False
        listed = any(self.src_inv.get(k, v) is not None for k, v in keys)
        return listed or self.source_kind(src_id) is not None

    def _system_twin(self, kind: str | None, src_id: str) -> str | None:
        """The destination's own object of that name for a system object; '' when it has none;
        None when src_id is no system object."""
        rt = BY_KIND.get(kind or "")
        obj = self.src_inv.get(rt.kind, src_id) if rt is not None and rt.system else None
        if rt is None or obj is None or not rt.is_system(obj):
            return None
        for candidate in self.dst_inv.of(rt.kind):
            if rt.is_system(candidate) and candidate.get("name") == obj.get("name"):
                return str(candidate["id"])
        return ""

    def _dest_exists(self, kind: str, dest_id: str) -> bool:
        if kind in self.dst_inv.objects:
            return dest_id in self.dst_inv.objects[kind]
        return True

    async def resolve(self, kind: str | None, src_id: str) -> str | None:
        """Like peek, then by identity in the destination for targets outside this run."""
        found = self.peek(kind, src_id)
        if found or kind is None or kind in (ORG_KIND, USER_KIND):
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
            rt = BY_KIND.get(kind)
            if rt is None:
                continue
            obj = self.src_inv.get(kind, src_id) or await self.source.fetch_one(rt, src_id)
            if obj is None:
                continue
            probe = dict(obj)
            self.rename(kind, probe)  # the destination knows a renamed project by its new name
            owner = rt.owner if rt.owner != SELF else None
            if owner and obj.get(owner):
                # The owner's destination id, through the reference that names it.
                ref = ref_at(rt.kind, owner)
                target = ref.target if ref else None
                if target is None:
                    continue
                dest_owner = await self.resolve(target, obj[owner])
                if dest_owner is None:
                    return None
                probe[owner] = dest_owner
            match = self.dst_inv.find(rt, identity(rt, probe))
            if match is not None:
                return str(match["id"])
        return None
