"""`to_insert`: what a fetched row keeps, how its origin is translated, what RowNotes count."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from braintrust_migrate.engine.events.transform import RowNotes, to_insert

FULL_ROW: dict[str, Any] = {
    "id": "r1",
    "created": "2024-01-01T00:00:00Z",
    "span_id": "s1",
    "root_span_id": "s0",
    "span_parents": ["s0"],
    "input": {"q": 1},
    "output": "out",
    "expected": "exp",
    "error": None,
    "scores": {"acc": 1},
    "metadata": {"m": 1},
    "metrics": {"start": 1},
    "context": {"caller": "x"},
    "span_attributes": {"name": "root"},
    "tags": ["t"],
    "facets": {"f": 1},
    # read-only or system fields an insert must not carry
    "_xact_id": "100",
    "_pagination_key": "p1",
    "_object_delete": False,
    "project_id": "src-project",
    "experiment_id": "src-exp",
    "dataset_id": "src-ds",
    "log_id": "g",
    "comments": [{"id": "c"}],
    "audit_data": [{"action": "upsert"}],
    "classifications": {"topic": [{"id": "x"}]},
}


LOG_FIELDS = {
    "id", "created", "span_id", "root_span_id", "span_parents", "input", "output", "expected",
    "scores", "metadata", "metrics", "context", "span_attributes", "tags", "facets",
}  # fmt: skip


def no_resolve(kind: str, src_id: str) -> str | None:
    raise AssertionError(f"resolve called for {kind} {src_id}")


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("project_logs", LOG_FIELDS),
        ("experiment", LOG_FIELDS),
        (
            "dataset",  # the dataset insert schema has no outputs, scores, metrics or spans' context
            {"id", "created", "span_id", "root_span_id", "span_parents", "input", "expected", "metadata", "tags", "facets"},
        ),
    ],
)  # fmt: skip
def test_kept_fields_per_container(kind: str, fields: set[str]) -> None:
    out = to_insert(FULL_ROW, kind, no_resolve, RowNotes())
    assert set(out) == fields  # `error` is null: left out
    assert all(out[key] == FULL_ROW[key] for key in out)


def test_nulls_are_left_out_and_the_source_row_is_untouched() -> None:
    row = {"id": "r", "input": None, "expected": 0, "tags": [], "metadata": {}}
    before = copy.deepcopy(row)
    out = to_insert(row, "dataset", no_resolve, RowNotes())
    assert out == {"id": "r", "expected": 0, "tags": [], "metadata": {}}  # falsy but not null: kept
    assert row == before


@pytest.mark.parametrize(
    ("row", "audit", "classified"),
    [
        ({"id": "r"}, 0, 0),
        ({"id": "r", "audit_data": [{"a": 1}]}, 1, 0),
        ({"id": "r", "audit_data": []}, 0, 0),
        ({"id": "r", "classifications": {"t": [1]}}, 0, 1),
        ({"id": "r", "audit_data": [1], "classifications": {"t": [1]}}, 1, 1),
    ],
)
def test_lost_audit_and_classifications_are_counted(row: dict[str, Any], audit: int, classified: int) -> None:
    notes = RowNotes()
    out = to_insert(row, "project_logs", no_resolve, notes)
    assert "audit_data" not in out and "classifications" not in out
    assert (notes.audit_rows, notes.classified_rows) == (audit, classified)


@pytest.mark.parametrize(
    ("object_type", "kind"),
    [
        ("project_logs", "project"),
        ("experiment", "experiment"),
        ("dataset", "dataset"),
        ("prompt", "prompt"),
        ("function", "function"),
    ],
)
def test_origin_is_translated_to_the_destination_object(object_type: str, kind: str) -> None:
    calls: list[tuple[str, str]] = []

    def resolve(target: str, src_id: str) -> str | None:
        calls.append((target, src_id))
        return "dest-obj"

    origin = {
        "object_type": object_type,
        "object_id": "src-obj",
        "id": "row-9",
        "_xact_id": "55",
        "created": "c",
    }
    row = {"id": "r", "origin": origin}
    before = copy.deepcopy(row)
    notes = RowNotes()
    out = to_insert(row, "dataset", resolve, notes)
    assert calls == [(kind, "src-obj")]
    # The row id is kept by the copy; the source transaction id means nothing in the destination.
    assert out["origin"] == {
        "object_type": object_type,
        "object_id": "dest-obj",
        "id": "row-9",
        "created": "c",
    }
    assert row == before  # the source row is not rewritten
    assert notes == RowNotes()


@pytest.mark.parametrize(
    ("origin", "resolves"),
    [
        ({"object_type": "experiment", "object_id": "gone"}, False),  # target not migrated
        ({"object_type": "prompt_session", "object_id": "ps"}, None),  # no such kind: not even asked
        ({"object_type": "bogus", "object_id": "x"}, None),
        ({"object_id": "x"}, None),
    ],
)
def test_an_origin_that_cannot_be_translated_is_dropped_and_noted(
    origin: dict[str, Any], resolves: bool | None
) -> None:
    asked: list[str] = []

    def resolve(target: str, src_id: str) -> str | None:
        asked.append(target)
        return None

    notes = RowNotes()
    out = to_insert({"id": "r7", "input": 1, "origin": origin}, "project_logs", resolve, notes)
    assert out == {"id": "r7", "input": 1}
    assert notes.origins_dropped == 1
    assert notes.examples == [f"row r7: origin {origin.get('object_type')} not migrated"]
    assert bool(asked) == (resolves is not None)


def test_examples_are_capped_at_five_but_every_drop_is_counted() -> None:
    notes = RowNotes()
    for i in range(8):
        to_insert(
            {"id": f"r{i}", "origin": {"object_type": "dataset", "object_id": "x"}},
            "dataset",
            lambda kind, src_id: None,
            notes,
        )
    assert notes.origins_dropped == 8
    assert notes.examples == [f"row r{i}: origin dataset not migrated" for i in range(5)]


def test_notes_accumulate_across_rows() -> None:
    notes = RowNotes()
    rows = [{"id": "a", "audit_data": [1]}, {"id": "b", "audit_data": [1], "classifications": {"x": 1}}]
    for row in rows:
        to_insert(row, "experiment", no_resolve, notes)
    assert (notes.audit_rows, notes.classified_rows, notes.origins_dropped) == (2, 1, 0)
