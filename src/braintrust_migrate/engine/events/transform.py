"""From a fetched row to an insert row: what is kept, what is translated, what cannot go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.engine.refs import POLYMORPHIC_KINDS
from braintrust_migrate.engine.resources import EVENT_STREAMS

# Fields an insert carries, per stream kind.
KEPT: dict[str, tuple[str, ...]] = {stream.kind: stream.kept for stream in EVENT_STREAMS}


@dataclass
class RowNotes:
    """What a batch of rows lost on the way, counted for the report."""

    origins_dropped: int = 0
    audit_rows: int = 0
    classified_rows: int = 0
    examples: list[str] = field(default_factory=list)


def to_insert(
    row: dict[str, Any], kind: str, resolve: Callable[[str, str], str | None], notes: RowNotes
) -> dict[str, Any]:
    # A plain loop with one lookup per kept field: the cheapest way in Python (this runs per row).
    out = {}
    get = row.get
    for key in KEPT[kind]:
        value = get(key)
        if value is not None:
            out[key] = value
    if get("audit_data"):
        notes.audit_rows += 1
    if get("classifications"):
        notes.classified_rows += 1
    origin = out.get("origin")
    if origin is None:
        return out
    if isinstance(origin, dict):
        target = POLYMORPHIC_KINDS.get(str(origin.get("object_type")))
        dest = resolve(target, str(origin.get("object_id"))) if target else None
        if dest:
            # The row id is kept by the copy, so origin.id stays true; a source transaction does not.
            out["origin"] = {k: v for k, v in origin.items() if k != "_xact_id"} | {"object_id": dest}
        else:
            del out["origin"]
            notes.origins_dropped += 1
            if len(notes.examples) < 5:
                notes.examples.append(f"row {row.get('id')}: origin {origin.get('object_type')} not migrated")
    return out
