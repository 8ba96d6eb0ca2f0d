"""Source-org ids left in the destination: found by walking any JSON value, kept in a
bounded log (a sample plus a count) so millions of rows cannot exhaust memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.engine.refs import UUID_RE

LEAK_SAMPLE = 100


def source_ids_in(value: Any, source_ids: set[str], where: str = "") -> Iterator[tuple[str, str]]:
    """(field path, source id) for every source-org id held anywhere in `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from source_ids_in(item, source_ids, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from source_ids_in(item, source_ids, f"{where}[{index}]")
    elif isinstance(value, str) and len(value) >= 36:
        for found in UUID_RE.findall(value):
            if found in source_ids:
                yield where, found


@dataclass
class LeakLog:
    """Every leak is counted; only the first `limit` are kept."""

    source_ids: set[str]
    limit: int = LEAK_SAMPLE
    sample: list[dict[str, str]] = field(default_factory=list)
    count: int = 0

    def add(self, leak: dict[str, str]) -> None:
        self.count += 1
        if len(self.sample) < self.limit:
            self.sample.append(leak)

    def scan_object(self, type_name: str, obj: dict[str, Any]) -> None:
        for where, found in source_ids_in(obj, self.source_ids):
            self.add({"type": type_name, "dest_id": obj.get("id", ""), "field": where, "source_id": found})

    def scan_row(self, kind: str, container: str, row: dict[str, Any]) -> None:
        for where, found in source_ids_in(row, self.source_ids):
            self.add(
                {
                    "type": kind,
                    "dest_id": container,
                    "row_id": str(row.get("id")),
                    "field": where,
                    "source_id": found,
                }
            )
