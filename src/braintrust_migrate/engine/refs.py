"""Every id-bearing field of every object type, as data, and one walker over them.

A path is dotted keys; `[]` visits each list item and `*` each map value, e.g.
`prompt_data.tool_functions[].id`. `when` holds sibling conditions on the object
that contains the last key (`{"type": "function"}`); a polymorphic reference names
the sibling that holds the target type (`type_field`) and maps its values to our
kinds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# An object id as the API writes it, also when embedded in free text (BTQL filters, options).
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# What a missing target does to the field: drop the smallest enclosing element
# (list item, map entry, or the key itself), fail the object when the field is required, or
# skip the object (it only says something about its targets, e.g. an ACL).
OnMissing = Literal["drop", "fail", "skip"]
# Kinds that are no resource type: the org itself, and users (mapped by email, never created).
ORG_KIND = "organization"
USER_KIND = "user"

# AclObjectType / origin object_type values, mapped to the kind whose id they hold.
POLYMORPHIC_KINDS: Mapping[str, str | None] = {
    "organization": ORG_KIND,
    "org_member": ORG_KIND,
    "org_project": ORG_KIND,
    "project": "project",
    "project_log": "project",
    "project_logs": "project",
    "experiment": "experiment",
    "dataset": "dataset",
    "prompt": "prompt",
    "function": "function",
    "group": "group",
    "role": "role",
    "prompt_session": None,  # no API to migrate prompt sessions
}


@dataclass(frozen=True)
class Ref:
    owner: str
    path: str
    target: str | None = None
    type_field: str | None = None
    when: Mapping[str, Any] = field(default_factory=dict)
    on_missing: OnMissing = "drop"
    # Sibling key pinning a version (a transaction id) of the target.
    version_field: str | None = None
    # Where "drop" removes: the key (default), the enclosing list item / map entry,
    # or the whole object holding the key (e.g. a function's `origin`).
    drop: Literal["key", "element", "parent"] = "key"
    # With on_missing "skip": the outcome's reason (a user's comes from the user map).
    skip_reason: str | None = None

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(_split(self.path))


def _split(path: str) -> Iterator[str]:
    for part in path.split("."):
        if part.endswith("[]"):
            if part[:-2]:
                yield part[:-2]
            yield "[]"
        else:
            yield part


_FN = {"type": "function"}

REFERENCES: tuple[Ref, ...] = (
    # project settings
    Ref("project_settings", "settings.baseline_experiment_id", "experiment"),
    Ref(
        "project_settings",
        "settings.default_preprocessor.id",
        "function",
        when=_FN,
        version_field="version",
        drop="parent",
    ),
    # experiment
    Ref("experiment", "project_id", "project", on_missing="fail"),
    Ref("experiment", "base_exp_id", "experiment"),
    Ref("experiment", "dataset_id", "dataset", version_field="dataset_version"),
    Ref("experiment", "parameters_id", "function", version_field="parameters_version"),
    # datasets and the simple project-scoped types
    *(
        Ref(kind, "project_id", "project", on_missing="fail")
        for kind in (
            "dataset",
            "prompt",
            "function",
            "project_tag",
            "project_score",
            "span_iframe",
            "mcp_server",
            "project_automation",
        )
    ),
    # prompt_data, shared by prompts and functions
    *(
        ref
        for kind in ("prompt", "function")
        for ref in (
            Ref(
                kind,
                "prompt_data.tool_functions[].id",
                "function",
                when=_FN,
                version_field="version",
                drop="element",
            ),
            Ref(kind, "prompt_data.mcp.*.id", "mcp_server", when={"type": "id"}, drop="element"),
            Ref(kind, "prompt_data.origin.prompt_id", "prompt", version_field="prompt_version"),
            Ref(kind, "prompt_data.origin.project_id", "project"),
        )
    ),
    # function_data and origin
    Ref("function", "origin.object_id", type_field="object_type", drop="parent"),
    Ref(
        "function",
        "function_data.nodes.*.function.function_id",
        "function",
        version_field="version",
        drop="element",
    ),
    # Graph nodes naming a prompt session: no API migrates those, so the node is dropped and reported.
    *(
        Ref("function", f"function_data.nodes.*.function.{name}", "prompt_session", drop="element")
        for name in ("prompt_session_id", "prompt_session_function_id")
    ),
    Ref(
        "function",
        "function_data.preprocessor.id",
        "function",
        when=_FN,
        version_field="version",
        drop="parent",
    ),
    Ref("function", "function_data.topic_maps.*[].topic_map_id", "function"),
    # roles and groups
    Ref("role", "member_roles[]", "role"),
    Ref("group", "member_groups[]", "group"),
    Ref("group", "member_users[]", USER_KIND),
    # acl: only copied once what it names exists (checked in this order)
    Ref("acl", "object_id", type_field="object_type", on_missing="skip", skip_reason="object_not_migrated"),
    Ref("acl", "user_id", USER_KIND, on_missing="skip"),
    Ref("acl", "group_id", "group", on_missing="skip", skip_reason="group_not_migrated"),
    Ref("acl", "role_id", "role", on_missing="skip", skip_reason="role_not_migrated"),
    # automations
    Ref(
        "project_automation",
        "config.facet_functions[].id",
        "function",
        when=_FN,
        version_field="version",
        drop="element",
    ),
    Ref(
        "project_automation",
        "config.topic_map_functions[].function.id",
        "function",
        when=_FN,
        version_field="version",
        drop="element",
    ),
    # An experiment-scoped config is invalid without its experiment.
    Ref("project_automation", "config.data_scope.experiment_id", "experiment", on_missing="fail"),
    # scores
    Ref(
        "project_score",
        "config.online.scorers[].id",
        "function",
        when=_FN,
        version_field="version",
        drop="element",
    ),
    # views
    Ref("view", "object_id", type_field="object_type", on_missing="fail"),
    Ref("view", "user_id", USER_KIND),
    # env vars
    Ref("env_var", "object_id", type_field="object_type", on_missing="fail"),
    # dataset snapshots (xact_id is translated with the dataset's rows)
    Ref("dataset_snapshot", "dataset_id", "dataset", on_missing="fail", version_field="xact_id"),
)

REFS_BY_OWNER: dict[str, tuple[Ref, ...]] = {}
for _ref in REFERENCES:
    REFS_BY_OWNER[_ref.owner] = (*REFS_BY_OWNER.get(_ref.owner, ()), _ref)

# Fields that name a project by its NAME (not its id): rewritten by a project rename
# (engine/renames.py), never resolved or dropped like the id references above.
NAME_REFERENCES: tuple[Ref, ...] = (
    # graph nodes of kind "function" calling {project_name, slug}
    Ref("function", "function_data.nodes.*.function.project_name", "project"),
)
NAME_REFS_BY_OWNER: dict[str, tuple[Ref, ...]] = {}
for _ref in NAME_REFERENCES:
    NAME_REFS_BY_OWNER[_ref.owner] = (*NAME_REFS_BY_OWNER.get(_ref.owner, ()), _ref)


def ref_at(owner: str, path: str) -> Ref | None:
    """The reference a kind declares at a top-level field (e.g. its owner field)."""
    return next((ref for ref in REFS_BY_OWNER.get(owner, ()) if ref.path == path), None)


def target_kinds(ref: Ref) -> frozenset[str]:
    """Every kind a reference can point at (a polymorphic one: all that the map names)."""
    if ref.target:
        return frozenset({ref.target})
    return frozenset(kind for kind in POLYMORPHIC_KINDS.values() if kind)


@dataclass
class Slot:
    """One occurrence of a reference inside a body."""

    ref: Ref
    parent: Any  # the dict holding the id
    key: str | int
    path: str  # concrete path, e.g. prompt_data.tool_functions[2].id
    element: tuple[Any, str | int] | None  # (container, key) of the enclosing list item / map entry
    holder: tuple[Any, str | int] | None  # (container, key) of `parent` itself

    @property
    def value(self) -> Any:
        return self.parent[self.key]

    @property
    def target(self) -> str | None:
        if self.ref.target:
            return self.ref.target
        kind = self.parent.get(self.ref.type_field) if isinstance(self.parent, dict) else None
        return POLYMORPHIC_KINDS.get(kind) if isinstance(kind, str) else None

    @property
    def version(self) -> Any:
        if self.ref.version_field and isinstance(self.parent, dict):
            return self.parent.get(self.ref.version_field)
        return None


def find_slots(kind: str, body: Any) -> list[Slot]:
    """Every reference slot in `body` (an object of `kind`) that holds a non-empty value."""
    slots: list[Slot] = []
    for ref in REFS_BY_OWNER.get(kind, ()):
        _visit(ref, body, ref.segments, "", None, None, slots)
    return slots


def find_name_slots(kind: str, body: Any) -> list[Slot]:
    """Every project-name reference (NAME_REFERENCES) in `body` that holds a non-empty value."""
    slots: list[Slot] = []
    for ref in NAME_REFS_BY_OWNER.get(kind, ()):
        _visit(ref, body, ref.segments, "", None, None, slots)
    return slots


Location = tuple[Any, str | int] | None


def _visit(
    ref: Ref,
    node: Any,
    segments: tuple[str, ...],
    path: str,
    element: Location,
    holder: Location,
    out: list[Slot],
) -> None:
    head, rest = segments[0], segments[1:]
    if head == "[]":
        if not isinstance(node, list):
            return
        for index, item in enumerate(node):
            here = f"{path}[{index}]"
            if rest:
                _visit(ref, item, rest, here, (node, index), (node, index), out)
            elif isinstance(item, str) and item:
                out.append(Slot(ref, node, index, here, (node, index), holder))
        return
    if head == "*":
        if not isinstance(node, dict):
            return
        for name, item in node.items():
            here = f"{path}.{name}" if path else str(name)
            if rest:
                _visit(ref, item, rest, here, (node, name), (node, name), out)
        return
    if not isinstance(node, dict) or head not in node:
        return
    here = f"{path}.{head}" if path else head
    if rest:
        _visit(ref, node[head], rest, here, element, (node, head), out)
        return
    value = node[head]
    if not isinstance(value, str) or not value:
        return
    if any(node.get(k) != v for k, v in ref.when.items()):
        return
    out.append(Slot(ref, node, head, here, element, holder))


def _location(slot: Slot) -> Location:
    if slot.ref.drop == "element" and slot.element is not None:
        return slot.element
    if slot.ref.drop == "parent" and slot.holder is not None:
        return slot.holder
    if isinstance(slot.parent, list):
        return (slot.parent, slot.key)
    return None


def drop_slots(slots: list[Slot]) -> None:
    """Remove the references of `slots`; list items go last-first so indices stay valid."""
    removals: dict[tuple[int, Any], tuple[Any, str | int]] = {}
    for slot in slots:
        location = _location(slot)
        if location is None:
            slot.parent.pop(slot.key, None)
            if slot.ref.version_field:
                slot.parent.pop(slot.ref.version_field, None)
        else:
            removals[(id(location[0]), location[1])] = location
    ordered = sorted(
        removals.values(), key=lambda loc: loc[1] if isinstance(loc[1], int) else -1, reverse=True
    )
    for container, key in ordered:
        if isinstance(container, list) and isinstance(key, int) and key < len(container):
            del container[key]
        elif isinstance(container, dict):
            container.pop(key, None)
