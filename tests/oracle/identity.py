"""The oracle's own id map: which destination object stands for which source object,
found by identity (names, slugs, owners), never by the tool's state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.oracle.reader import OrgData

Obj = dict[str, Any]
Key = tuple[Any, ...]

BUILTIN_GROUPS = frozenset({"Owners", "Engineers", "Viewers"})
ACL_FIELDS = (
    "object_type",
    "object_id",
    "user_id",
    "group_id",
    "permission",
    "restrict_object_type",
    "role_id",
)


def _m(id_map: dict[str, str], value: Any) -> Any:
    """A source id in destination terms; None stays None; an unmapped id makes the key unmatchable."""
    if value is None:
        return None
    return id_map.get(value, _Unmapped(value))


@dataclass(frozen=True)
class _Unmapped:
    value: str


def _project(field_name: str) -> Callable[[Obj, dict[str, str], bool], Key]:
    def key(obj: Obj, id_map: dict[str, str], src: bool) -> Key:
        return (_m(id_map, obj["project_id"]) if src else obj["project_id"], obj[field_name])

    return key


def _org(field_name: str) -> Callable[[Obj, dict[str, str], bool], Key]:
    return lambda obj, id_map, src: (obj[field_name],)


def _owned(owner: str, *rest: str) -> Callable[[Obj, dict[str, str], bool], Key]:
    def key(obj: Obj, id_map: dict[str, str], src: bool) -> Key:
        head = _m(id_map, obj[owner]) if src else obj[owner]
        return (obj.get("object_type"), head, *(obj[r] for r in rest))

    return key


def _acl(obj: Obj, id_map: dict[str, str], src: bool) -> Key:
    if not src:
        return tuple(obj.get(f) for f in ACL_FIELDS)
    return tuple(
        obj.get(f) if f in ("object_type", "permission", "restrict_object_type") else _m(id_map, obj.get(f))
        for f in ACL_FIELDS
    )


# In dependency order: a key may use the ids mapped by the types before it.
IDENTITIES: tuple[tuple[str, Callable[[Obj, dict[str, str], bool], Key]], ...] = (
    ("roles", _org("name")),
    ("groups", _org("name")),
    ("ai_secrets", _org("name")),
    ("environments", _org("slug")),
    ("projects", _org("name")),
    ("datasets", _project("name")),
    ("experiments", _project("name")),
    ("prompts", _project("slug")),
    ("functions", _project("slug")),
    ("project_tags", _project("name")),
    ("project_scores", _project("name")),
    ("project_automations", _project("name")),
    ("span_iframes", _project("name")),
    ("mcp_servers", _project("name")),
    ("dataset_snapshots", _owned("dataset_id", "name")),
    ("views", _owned("object_id", "name")),
    ("env_vars", _owned("object_id", "name")),
    ("acls", _acl),
)


@dataclass
class Matching:
    id_map: dict[str, str] = field(default_factory=dict)
    # type -> [(source object, destination object or None)]
    pairs: dict[str, list[tuple[Obj, Obj | None]]] = field(default_factory=dict)
    extra: dict[str, list[Obj]] = field(default_factory=dict)  # destination objects nobody maps to
    duplicates: list[str] = field(default_factory=list)
    unmapped_users: set[str] = field(default_factory=set)


def match(source: OrgData, dest: OrgData, project_names: dict[str, str] | None = None) -> Matching:
    """`project_names`: source project name -> its expected destination name (renames)."""
    renamed = project_names or {}
    m = Matching()
    m.id_map[source.org["id"]] = dest.org["id"]
    dest_users = {u.get("email"): u["id"] for u in dest.objects["users"]}
    for user in source.objects["users"]:
        if user.get("email") in dest_users:
            m.id_map[user["id"]] = dest_users[user["email"]]
        else:
            m.unmapped_users.add(user["id"])
    for name, key in IDENTITIES:
        by_key: dict[Key, list[Obj]] = defaultdict(list)
        for obj in dest.objects[name]:
            by_key[key(obj, m.id_map, False)].append(obj)
        for k, objs in by_key.items():
            if len(objs) > 1:
                m.duplicates.append(f"{name} {k}: {len(objs)} destination objects")
        used: set[str] = set()
        pairs = []
        for obj in source.objects[name]:
            src_key = key(obj, m.id_map, True)
            if name == "projects" and obj["name"] in renamed:
                src_key = (renamed[obj["name"]],)
            found = by_key.get(src_key)
            target = found[0] if found else None
            if target is not None:
                m.id_map[obj["id"]] = target["id"]
                used.add(target["id"])
            pairs.append((obj, target))
        m.pairs[name] = pairs
        m.extra[name] = [o for o in dest.objects[name] if o["id"] not in used]
    return m
