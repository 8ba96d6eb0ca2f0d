"""Source-org ids left in the destination: found by walking any JSON value, kept in a
bounded log (a sample plus a count) so millions of rows cannot exhaust memory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from braintrust_migrate.engine.refs import UUID_RE

LEAK_SAMPLE = 100
# An id's last 28 characters over a row's JSON text: ids hold no character JSON escapes, so every
# id the walk would find is in the text, its tail found at its first dash (the text may hold more,
# e.g. in keys: the walk decides). Starting at the dash lets the regex skip to dashes instead of
# trying every position (5x faster than the whole pattern); only uuid-shaped ids can be found.
_ID_TAIL = re.compile(rb"-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


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
    _tails: frozenset[bytes] | None = field(default=None, repr=False)

    def _may_leak(self, value: Any) -> bool:
        """Whether the tail of a source id occurs anywhere in the value's JSON text (in C: one
        regex pass and a set test): only then is the value walked, field by field."""
        if self._tails is None:
            self._tails = frozenset(i[-28:].encode() for i in self.source_ids if UUID_RE.fullmatch(i))
        if not self._tails:
            return False
        try:
            text = orjson.dumps(value)
        except TypeError:
            return True
        return not self._tails.isdisjoint(_ID_TAIL.findall(text))

    def add(self, leak: dict[str, str]) -> None:
        self.count += 1
        if len(self.sample) < self.limit:
            self.sample.append(leak)

    def scan_object(self, type_name: str, obj: dict[str, Any]) -> None:
        for where, found in source_ids_in(obj, self.source_ids):
            self.add({"type": type_name, "dest_id": obj.get("id", ""), "field": where, "source_id": found})

    def scan_rows(self, kind: str, container: str, rows: list[dict[str, Any]]) -> None:
        """A page of rows: one look at the page's text, row by row only when it names a source id."""
        if self._may_leak(rows):
            for row in rows:
                self.scan_row(kind, container, row)

    def scan_row(self, kind: str, container: str, row: dict[str, Any]) -> None:
        if not self._may_leak(row):
            return
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
