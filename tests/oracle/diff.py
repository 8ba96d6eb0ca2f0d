"""Translating a source value into destination terms, and a tree diff that tolerates
only the named gaps: a reference to an object that was not migrated may be dropped
(with its list element or its enclosing field), version pins are collected for a
separate as-of check, and fields the API sets are not compared."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A version pin (a transaction id, different in every org) and the sibling key naming what it pins.
VERSION_SIBLINGS = {
    "dataset_version": "dataset_id",
    "parameters_version": "parameters_id",
    "prompt_version": "prompt_id",
    "version": ("id", "function_id"),
    "xact_id": "dataset_id",  # a dataset snapshot
}


@dataclass(frozen=True)
class Dangling:
    """A source string naming a source object that has no counterpart in the destination."""

    value: str


@dataclass
class Pin:
    path: str
    target: str  # the pinned object, as its destination id
    src_version: str
    dst_version: str | None


@dataclass
class Diff:
    differences: list[str] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # tolerated: references to unmigrated objects


def translate(value: Any, id_map: dict[str, str], source_ids: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: translate(v, id_map, source_ids) for k, v in value.items()}
    if isinstance(value, list):
        return [translate(v, id_map, source_ids) for v in value]
    if isinstance(value, str):
        found = UUID.findall(value)
        if any(f not in id_map and f in source_ids for f in found):
            return Dangling(value)
        for f in found:
            value = value.replace(f, id_map.get(f, f))
    return value


def dangling(value: Any) -> bool:
    if isinstance(value, Dangling):
        return True
    if isinstance(value, dict):
        return any(dangling(v) for v in value.values())
    if isinstance(value, list):
        return any(dangling(v) for v in value)
    return False


def _absent(value: Any) -> bool:
    return value is None


def compare(expected: Any, actual: Any, path: str, out: Diff, skip: frozenset[str] = frozenset()) -> None:
    """`expected` is a translated source value; `skip` names top-level keys not compared."""
    if isinstance(expected, Dangling):
        out.differences.append(f"{path}: still refers to an unmigrated source object: {expected.value[:80]}")
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key in skip:
                continue
            where = f"{path}.{key}"
            exp, act = expected.get(key), actual.get(key)
            if _is_pin(expected, key):
                _pin(expected, actual, key, where, out)
                continue
            if _absent(act) and not _absent(exp):
                if dangling(exp):
                    out.dropped.append(where)
                else:
                    out.differences.append(f"{where}: missing in the destination (source: {_short(exp)})")
            elif _absent(exp) and not _absent(act):
                out.differences.append(f"{where}: only in the destination: {_short(act)}")
            elif not (_absent(exp) and _absent(act)):
                compare(exp, act, where, out)
        return
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            kept = [e for e in expected if not dangling(e)]
            if len(kept) == len(actual):
                out.dropped += [f"{path}[{i}]" for i, e in enumerate(expected) if dangling(e)]
                expected = kept
            else:
                out.differences.append(
                    f"{path}: {len(actual)} items in the destination, {len(expected)} in the source"
                )
                return
        for index, (exp, act) in enumerate(zip(expected, actual, strict=True)):
            compare(exp, act, f"{path}[{index}]", out)
        return
    if expected != actual:
        out.differences.append(f"{path}: source {_short(expected)} != destination {_short(actual)}")


def _is_pin(parent: dict[str, Any], key: str) -> bool:
    """A version key is a pin when the id it pins stands beside it (else it is plain data)."""
    siblings = VERSION_SIBLINGS.get(key)
    if siblings is None or isinstance(parent.get(key), dict | list):
        return False
    return any(parent.get(s) is not None for s in ((siblings,) if isinstance(siblings, str) else siblings))


def _pin(expected: dict[str, Any], actual: dict[str, Any], key: str, where: str, out: Diff) -> None:
    src_version = expected.get(key)
    if src_version is None:
        if actual.get(key) is not None:
            out.differences.append(f"{where}: a version pin only in the destination")
        return
    siblings = VERSION_SIBLINGS[key]
    for sibling in (siblings,) if isinstance(siblings, str) else siblings:
        target = expected.get(sibling)
        if target is None:
            continue
        if isinstance(target, Dangling):
            return  # the pinned object is not migrated: the pin goes with the reference
        out.pins.append(Pin(where, str(target), str(src_version), _opt(actual.get(key))))
        return


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
