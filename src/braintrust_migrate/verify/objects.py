"""Object parity: every source object has a destination twin with the same content once
ids are translated; nothing extra; no source-org id anywhere in the destination."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.engine.checksum import body_copy, differing_paths, normalize
from braintrust_migrate.engine.inventory import Inventory, identity
from braintrust_migrate.engine.names import ProjectNames
from braintrust_migrate.engine.refs import UUID_RE, drop_slots, find_slots
from braintrust_migrate.engine.renames import rename_body
from braintrust_migrate.engine.resources import ResourceType
from braintrust_migrate.verify.expected import EXPECTED_REASONS, Todos

SAMPLE = 20


@dataclass
class TypeParity:
    type: str
    source: int = 0
    matched: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    differing: list[dict[str, Any]] = field(default_factory=list)
    not_migratable: list[dict[str, Any]] = field(default_factory=list)
    # Differences migrate reported as to-dos (see verify.expected): listed, never failing.
    expected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.differing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "ok": self.ok,
            "source": self.source,
            "matched": self.matched,
            "missing": len(self.missing),
            "extra": len(self.extra),
            "differing": len(self.differing),
            "missing_sample": self.missing[:SAMPLE],
            "extra_sample": self.extra[:SAMPLE],
            "differing_sample": self.differing[:SAMPLE],
            "not_migratable": self.not_migratable,
            "expected": len(self.expected),
            "expected_differences": self.expected,
        }


@dataclass
class IdMap:
    """Source id -> destination id, from the migration state and from identity matches."""

    ids: dict[str, str] = field(default_factory=dict)
    # The run's project renames, and the source's project names (what a name reference may name).
    names: ProjectNames = field(default_factory=ProjectNames)
    source_names: frozenset[str] = frozenset()

    def translate(self, rt: ResourceType, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The body the destination should hold, and the reference paths that cannot map."""
        body = body_copy(rt.body(obj))
        rename_body(rt.kind, body, self.names, self.source_names)
        unmapped = []
        for slot in find_slots(rt.kind, body):
            if slot.value in self.ids:
                slot.parent[slot.key] = self.ids[slot.value]
            else:
                unmapped.append(slot)
        drop_slots(unmapped)
        return _without_versions(rt, self._embedded(body)), [slot.path for slot in unmapped]

    def _embedded(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._embedded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._embedded(v) for v in value]
        if isinstance(value, str) and len(value) >= 36:
            return UUID_RE.sub(lambda m: self.ids.get(m.group(0), m.group(0)), value)
        return value


def _without_versions(rt: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
    # Transaction ids differ between orgs by design: only the reference itself is compared.
    for slot in find_slots(rt.kind, body):
        if slot.ref.version_field and isinstance(slot.parent, dict):
            slot.parent.pop(slot.ref.version_field, None)
    return normalize(body)


def comparable_dest(rt: ResourceType, obj: dict[str, Any], skip: Iterable[str]) -> dict[str, Any]:
    body = {k: v for k, v in rt.body(obj).items() if k not in set(skip)}
    return _without_versions(rt, body)


def compare_type(
    rt: ResourceType,
    sources: list[dict[str, Any]],
    dests: list[dict[str, Any]],
    ids: IdMap,
    dest_inv: Inventory,
    todos: Todos | None = None,
) -> TypeParity:
    todos = todos or Todos()
    parity = TypeParity(rt.name)
    claimed: set[str] = set()
    for obj in sources:
        label = {"name": obj.get("name") or obj.get("slug"), "source_id": obj["id"]}
        reason = rt.skip(obj) if rt.skip else None
        if reason:
            parity.not_migratable.append({**label, "reason": reason})
            if reason in EXPECTED_REASONS:  # migrate skips these with this to-do, every time
                parity.expected.append(todos.entry(rt.name, label, reason))
            continue
        parity.source += 1
        expected, unmapped = ids.translate(rt, obj)
        twin = _twin(rt, obj, expected, ids, dest_inv)
        if twin is None:
            parity.missing.append(label)
            continue
        claimed.add(twin["id"])
        # Fields whose reference could not map (e.g. an unmapped user) are left to the server.
        top_level_unmapped = {
            path.split(".")[0].split("[")[0] for path in unmapped if "." not in path and "[" not in path
        }
        if rt.merges(twin):
            paths = _merge_differences(rt, expected, twin)
        else:
            paths = differing_paths(expected, comparable_dest(rt, twin, top_level_unmapped))
        if paths:
            parity.differing.append({**label, "dest_id": twin["id"], "fields": paths})
            continue
        parity.matched += 1
        todo = todos.reason(rt.name, obj["id"])
        if todo:
            parity.expected.append(todos.entry(rt.name, {**label, "dest_id": twin["id"]}, todo))
    for obj in dests:
        if obj["id"] not in claimed:
            parity.extra.append({"name": obj.get("name") or obj.get("slug"), "dest_id": obj["id"]})
    return parity


def _merge_differences(rt: ResourceType, expected: dict[str, Any], twin: dict[str, Any]) -> list[str]:
    """A built-in object is merged into: the source's (mapped) members must all be in the
    destination's, which may hold more of its own; its other fields are the destination's."""
    return [
        name for name in rt.merge_fields if not set(expected.get(name) or ()) <= set(twin.get(name) or ())
    ]


def _twin(
    rt: ResourceType, obj: dict[str, Any], expected: dict[str, Any], ids: IdMap, dest_inv: Inventory
) -> dict[str, Any] | None:
    mapped = ids.ids.get(obj["id"])
    if mapped:
        found = dest_inv.get(rt.kind, mapped)
        if found is not None:
            return found
    return dest_inv.find(rt, identity(rt, {**obj, **expected}))
