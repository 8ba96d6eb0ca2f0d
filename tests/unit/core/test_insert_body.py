"""The insert body joined from each row's own encoding is byte for byte what encoding the batch gives."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from braintrust_migrate.engine.events.writer import ENVELOPE, Encoded, body, encode

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
rows = st.lists(st.dictionaries(st.text(max_size=8), values, max_size=4), max_size=6)


@settings(max_examples=150, deadline=None)
@given(rows=rows)
def test_body_is_the_batch_encoded_once(rows: list[dict[str, Any]]) -> None:
    items = [encode(row, {}) for row in rows]
    sent = body(items)
    assert sent == orjson.dumps({"events": rows})
    # The sizes the batches are cut by add up to the body (plus one separator each, minus one).
    assert len(sent) == ENVELOPE + sum(item.size for item in items) - (1 if items else 0)


def test_an_encoded_row_keeps_the_row_and_its_size() -> None:
    row = {"id": "b", "input": {"x": [1, 2]}}
    item = encode(row, {"_pagination_key": "p1", "_xact_id": "7"})
    assert (item.row_id, item.key, item.src_xact, item.size) == ("b", "p1", 7, len(orjson.dumps(row)) + 1)
    assert item.row is row
    assert (
        body([item, Encoded({"id": "c"}, 0, None, None)])
        == b'{"events":[{"id":"b","input":{"x":[1,2]}},{"id":"c"}]}'
    )
