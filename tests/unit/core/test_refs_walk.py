"""`find_slots` / `drop_slots` over every entry of the reference table.

For each `Ref` a body is generated from its path alone (`[]` list items, `*` map values,
`when` conditions, version fields, the polymorphic type field), with a decoy before the real
item so that concrete indices and keys are checked; the expected body after a drop is
generated the same way with the dropped part left out, independently of the walker."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from braintrust_migrate.engine import refs as refs_module
from braintrust_migrate.engine.refs import POLYMORPHIC_KINDS, REFERENCES, Ref, drop_slots, find_slots
from braintrust_migrate.engine.resources import RESOURCE_TYPES

TARGET_ID = "11111111-2222-3333-4444-555555555555"
VERSION = "1000192"
MAP_KEY = "k1"
# Owners that are no row of RESOURCE_TYPES, and why.
EXTRA_OWNERS: dict[str, str] = {}  # every owner is a row of the type table
# Targets whose ids are looked up (users, the org) or that no API migrates (prompt sessions: dropped).
EXTRA_TARGETS = {"user", "organization", "prompt_session"}


def segments(ref: Ref) -> list[str]:
    """The path split on our own: `a.b[].c` -> a, b, [], c (the table's grammar, from refs.py)."""
    out: list[str] = []
    for part in ref.path.split("."):
        if part.endswith("[]"):
            if part[:-2]:
                out.append(part[:-2])
            out.append("[]")
        else:
            out.append(part)
    return out


def poly_type(ref: Ref) -> tuple[str | None, str | None]:
    """A type value for a polymorphic ref, and the kind it maps to."""
    if ref.type_field is None:
        return None, ref.target
    return "experiment", "experiment"


def leaf(ref: Ref, *, when_matches: bool = True, dropped_key: bool = False) -> dict[str, Any]:
    type_value, _ = poly_type(ref)
    out: dict[str, Any] = {"keep_me": 1}
    for key, value in ref.when.items():
        out[key] = value if when_matches else f"not-{value}"
    if ref.type_field:
        out[ref.type_field] = type_value
    if not dropped_key:
        out[segments(ref)[-1]] = TARGET_ID
        if ref.version_field:
            out[ref.version_field] = VERSION
    return out


def drop_point(ref: Ref) -> int | None:
    """Index of the segment whose entry `drop_slots` removes; None: only the key (and version)."""
    segs = segments(ref)
    if segs[-1] == "[]":
        return len(segs) - 1  # an id that is itself a list item goes with its item
    if ref.drop == "element":
        return max(i for i, s in enumerate(segs) if s in ("[]", "*"))
    if ref.drop == "parent":
        return len(segs) - 2
    return None


def build(ref: Ref, *, dropped: bool = False, when_matches: bool = True) -> tuple[Any, str]:
    """The body holding `ref`'s path, and the concrete path of the id in it."""
    segs = segments(ref)
    cut = drop_point(ref) if dropped else None

    def at(i: int) -> tuple[Any, str]:
        seg = segs[i]
        last = i == len(segs) - 1
        if last and seg != "[]":
            # The object holding the id (its siblings: when, type field, version).
            return leaf(ref, when_matches=when_matches, dropped_key=dropped and cut is None), "." + seg
        inner, path = ("", "") if last else at(i + 1)
        if last:
            inner = TARGET_ID
        if seg == "[]":
            decoy: Any = "" if last else {"unrelated": True}
            return ([decoy] if cut == i else [decoy, inner]), f"[1]{path}"
        if seg == "*":
            entries = {"a_decoy": {"unrelated": True}}
            return (entries if cut == i else {**entries, MAP_KEY: inner}), f".{MAP_KEY}{path}"
        return ({} if cut == i else {seg: inner}), f".{seg}{path}"

    body, path = at(0)
    return body, path.lstrip(".")


IDS = [f"{ref.owner}:{ref.path}" + (f"[{','.join(ref.when)}]" if ref.when else "") for ref in REFERENCES]


@pytest.mark.parametrize("ref", REFERENCES, ids=IDS)
def test_the_slot_is_found_with_its_concrete_path_target_and_version(ref: Ref) -> None:
    body, path = build(ref)
    slots = [slot for slot in find_slots(ref.owner, body) if slot.ref is ref]
    assert len(slots) == 1, f"{ref.path} in {body}"
    slot = slots[0]
    assert slot.path == path
    assert slot.value == TARGET_ID
    assert slot.target == poly_type(ref)[1]
    assert slot.version == (VERSION if ref.version_field else None)
    # No other reference of the owner claims this id.
    assert [s.ref for s in find_slots(ref.owner, body) if s.value == TARGET_ID] == [ref]


WHEN_REFS = [(name, ref) for name, ref in zip(IDS, REFERENCES, strict=True) if ref.when]


@pytest.mark.parametrize("ref", [ref for _, ref in WHEN_REFS], ids=[name for name, _ in WHEN_REFS])
def test_a_non_matching_when_yields_no_slot(ref: Ref) -> None:
    body, _ = build(ref, when_matches=False)
    assert [slot for slot in find_slots(ref.owner, body) if slot.ref is ref] == []


@pytest.mark.parametrize("ref", REFERENCES, ids=IDS)
def test_drop_removes_what_the_ref_says(ref: Ref) -> None:
    body, _ = build(ref)
    expected, _ = build(ref, dropped=True)
    drop_slots([slot for slot in find_slots(ref.owner, body) if slot.ref is ref])
    assert body == expected


@pytest.mark.parametrize("ref", REFERENCES, ids=IDS)
def test_empty_or_non_text_ids_are_no_slots(ref: Ref) -> None:
    def swap(value: Any, bad: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v, bad) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v, bad) for v in value]
        return copy.deepcopy(bad) if value == TARGET_ID else value

    for bad in ("", None, 12, {"id": TARGET_ID}, [TARGET_ID]):
        body = swap(build(ref)[0], bad)
        assert [s for s in find_slots(ref.owner, body) if s.ref is ref] == [], bad


def test_every_kind_without_refs_has_no_slots() -> None:
    body = {"project_id": TARGET_ID, "object_id": TARGET_ID, "dataset_id": TARGET_ID}
    assert find_slots("no_such_kind", body) == []


def test_several_list_items_drop_last_first_so_indices_hold() -> None:
    body = {"member_roles": ["r0", "r1", "r2", "r3"]}
    slots = find_slots("role", body)
    drop_slots([s for s in slots if s.value in ("r0", "r2", "r3")])
    assert body == {"member_roles": ["r1"]}

    body = {"prompt_data": {"tool_functions": [{"type": "function", "id": f"f{i}"} for i in range(4)]}}
    drop_slots([s for s in find_slots("prompt", body) if s.value in ("f1", "f3")])
    assert body == {
        "prompt_data": {
            "tool_functions": [{"type": "function", "id": "f0"}, {"type": "function", "id": "f2"}]
        }
    }


def test_polymorphic_target_follows_the_type_field() -> None:
    for type_value, kind in POLYMORPHIC_KINDS.items():
        body = {"object_type": type_value, "object_id": TARGET_ID}
        (slot,) = [s for s in find_slots("view", body) if s.ref.path == "object_id"]
        assert slot.target == kind
    (slot,) = find_slots("view", {"object_type": "not_a_type", "object_id": TARGET_ID})
    assert slot.target is None


# --- the table itself -----------------------------------------------------------------------

KINDS = {rt.kind for rt in RESOURCE_TYPES}


def test_every_owner_is_a_resource_type_or_a_documented_extra() -> None:
    owners = {ref.owner for ref in REFERENCES}
    assert owners - KINDS <= set(EXTRA_OWNERS), owners - KINDS - set(EXTRA_OWNERS)


def test_every_target_is_a_kind_we_migrate_or_look_up() -> None:
    targets = {ref.target for ref in REFERENCES if ref.target} | {k for k in POLYMORPHIC_KINDS.values() if k}
    assert targets - KINDS <= EXTRA_TARGETS, targets - KINDS - EXTRA_TARGETS


def test_every_ref_is_well_formed() -> None:
    for ref in REFERENCES:
        segs = segments(ref)
        assert (ref.target is None) != (ref.type_field is None), ref  # exactly one way to name the target
        assert segs[-1] != "*", ref  # a map value is an object holding the id, never the id
        if ref.drop == "element":
            assert "[]" in segs or "*" in segs, ref  # there must be an element to remove
        if ref.drop == "parent":
            assert len(segs) >= 2 and segs[-1] != "[]", ref
        if segs[-1] == "[]":
            assert not ref.when and not ref.version_field, ref  # a bare id in a list has no siblings


def test_refs_by_owner_is_the_table_grouped() -> None:
    grouped = [ref for refs in refs_module.REFS_BY_OWNER.values() for ref in refs]
    assert sorted(grouped, key=REFERENCES.index) == list(REFERENCES)
