"""Rows cut into insert batches by row count and bytes (`writer.encode`, `Inserter.batches`)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from braintrust_migrate.engine.events.writer import ENVELOPE, Encoded, Inserter, encode


def inserter(max_rows: int, max_bytes: int) -> Inserter:
    # Cutting batches never touches the client: no destination is needed.
    return Inserter(None, "dataset", "d1", max_rows=max_rows, max_bytes=max_bytes)  # type: ignore[arg-type]


def sized(*sizes: int) -> list[Encoded]:
    return [Encoded({"id": f"r{i}"}, size, f"k{i}", None) for i, size in enumerate(sizes)]


def groups(batches: list[list[Encoded]]) -> list[list[str]]:
    return [[item.row_id for item in batch] for batch in batches]


# --- encode ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "size"),
    [
        ({"id": "a"}, len(b'{"id":"a"}') + 1),  # +1: the comma between rows
        ({}, 3),
        # Bytes, not characters: "é" is two bytes in UTF-8, "日" three.
        ({"id": "é"}, len('{"id":"é"}'.encode()) + 1),
        ({"id": "日本"}, 7 + 6 + 2 + 1),
        ({"input": {"a": [1, 2, None]}}, len(b'{"input":{"a":[1,2,null]}}') + 1),
    ],
)
def test_encode_size_is_utf8_json_bytes_plus_separator(row: dict[str, Any], size: int) -> None:
    assert encode(row, {}).size == size


@pytest.mark.parametrize(
    ("source", "key", "xact"),
    [
        ({"_pagination_key": "p0001", "_xact_id": "1000192"}, "p0001", 1000192),
        ({"_xact_id": "not-a-number"}, None, None),
        ({"_xact_id": 12}, None, None),  # the API writes transaction ids as strings
        ({"_xact_id": ""}, None, None),
        ({}, None, None),
    ],
)
def test_encode_carries_resume_key_and_source_transaction(
    source: dict[str, Any], key: str | None, xact: int | None
) -> None:
    encoded = encode({"id": "r"}, source)
    assert (encoded.key, encoded.src_xact) == (key, xact)


def test_encode_takes_comments_from_the_source_row_as_a_copy() -> None:
    comments = [{"id": "c1", "comment": {"text": "hi"}}]
    source = {"comments": comments}
    encoded = encode({"id": "r"}, source)
    assert encoded.comments == comments
    comments.append({"id": "c2"})
    assert len(encoded.comments) == 1
    assert encode({"id": "r"}, {"comments": None}).comments == []
    assert encode({"id": "r"}, {}).comments == []


def test_encode_keeps_the_insert_row_itself() -> None:
    row = {"id": "r", "input": 1}
    assert encode(row, {"id": "r", "input": 1, "_xact_id": "5"}).row is row


# --- batches --------------------------------------------------------------------------------

CAP = ENVELOPE + 10  # room for exactly ten bytes of rows

BATCH_CASES = [
    # (name, sizes, max_rows, max_bytes, expected groups by row index)
    ("empty input", [], 10, CAP, []),
    ("one row", [1], 10, CAP, [[0]]),
    ("row cap", [1, 1, 1, 1, 1], 2, CAP, [[0, 1], [2, 3], [4]]),
    ("exactly max_rows fits in one", [1, 1, 1], 3, CAP, [[0, 1, 2]]),
    ("max_rows one", [1, 1, 1], 1, CAP, [[0], [1], [2]]),
    ("exactly the byte cap fits", [5, 5], 10, CAP, [[0, 1]]),
    ("one byte over the cap cuts", [5, 6], 10, CAP, [[0], [1]]),
    ("byte cut then continue", [5, 5, 5, 5, 5], 10, CAP, [[0, 1], [2, 3], [4]]),
    ("row larger than the cap goes alone", [1, 100, 1], 10, CAP, [[0], [1], [2]]),
    ("oversized first row", [100, 1, 1], 10, CAP, [[0], [1, 2]]),
    ("oversized last row", [1, 1, 100], 10, CAP, [[0, 1], [2]]),
    ("two oversized rows", [100, 100], 10, CAP, [[0], [1]]),
    ("rows and bytes both bind", [4, 4, 4, 1, 1, 1, 1], 3, CAP, [[0, 1], [2, 3, 4], [5, 6]]),
]


@pytest.mark.parametrize(
    ("sizes", "max_rows", "max_bytes", "expected"),
    [case[1:] for case in BATCH_CASES],
    ids=[case[0] for case in BATCH_CASES],
)
def test_batches(sizes: list[int], max_rows: int, max_bytes: int, expected: list[list[int]]) -> None:
    batches = inserter(max_rows, max_bytes).batches(sized(*sizes))
    assert groups(batches) == [[f"r{i}" for i in group] for group in expected]


def test_batches_do_not_share_or_reorder_items() -> None:
    items = sized(3, 3, 3, 3, 3, 3, 3)
    batches = inserter(2, CAP).batches(items)
    assert [item for batch in batches for item in batch] == items
    assert all(batch for batch in batches)


rows_strategy = st.lists(
    st.dictionaries(
        st.sampled_from(["input", "output", "metadata", "tags"]),
        # orjson.loads (the client) turns larger integers into floats, so 64 bits covers real rows.
        st.text(max_size=60) | st.integers(-(2**63), 2**63 - 1) | st.lists(st.text(max_size=10), max_size=4),
        max_size=3,
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy, max_rows=st.integers(1, 8), max_bytes=st.integers(ENVELOPE, 400))
def test_batches_judged_by_the_real_request_body(
    rows: list[dict[str, Any]], max_rows: int, max_bytes: int
) -> None:
    """Oracle: the JSON body actually sent. A batch of several rows never exceeds the byte cap,
    nor the row cap; a batch is only cut when the next row would break a cap (greedy)."""
    items = [encode({"id": f"r{i}", **row}, {}) for i, row in enumerate(rows)]
    batches = inserter(max_rows, max_bytes).batches(items)
    assert [item for batch in batches for item in batch] == items
    for index, batch in enumerate(batches):
        body = orjson.dumps({"events": [item.row for item in batch]})
        assert 1 <= len(batch) <= max_rows
        if len(batch) > 1:
            assert len(body) <= max_bytes
        if index + 1 < len(batches):
            grown = [*batch, batches[index + 1][0]]
            grown_body = orjson.dumps({"events": [item.row for item in grown]})
            # Allow the one byte the size model reserves for a trailing comma.
            assert len(grown) > max_rows or len(grown_body) + 1 > max_bytes
