"""The insert body joined from each row's own encoding is byte for byte what encoding the batch gives."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from braintrust_migrate.engine.events.writer import ENVELOPE, Encoded, Inserter, encode


def inserter(routes: dict[str, str] | None = None, max_rows: int = 1000, max_bytes: int = 10**9) -> Inserter:
    return Inserter(
        None, "experiment", None if routes else "d", max_rows=max_rows, max_bytes=max_bytes, routes=routes
    )  # type: ignore[arg-type]


def body(items: list[Encoded], shared: Inserter | None = None) -> bytes:
    """What goes on the wire: the client encodes the payload with orjson."""
    return orjson.dumps((shared or inserter()).payload(items))


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


@settings(max_examples=100, deadline=None)
@given(
    rows=rows,
    owners=st.lists(st.sampled_from(["a", "b", "c"]), min_size=6, max_size=6),
    cap=st.integers(60, 400),
)
def test_a_shared_batch_routes_each_row_to_its_container_within_the_byte_cap(
    rows: list[dict[str, Any]], owners: list[str], cap: int
) -> None:
    routes = {"a": "dest-a", "b": "dest-b", "c": "dest-c"}
    shared = inserter(routes, max_bytes=cap)
    items = [encode(row, {}, owners[n]) for n, row in enumerate(rows)]
    batches = shared.batches(items)
    assert [item for batch in batches for item in batch] == items  # every row once, in order
    for batch in batches:
        sent = orjson.loads(body(batch, shared))
        assert set(sent) == {"experiment"}
        expected: dict[str, list[dict[str, Any]]] = {}
        for item in batch:
            expected.setdefault(routes[str(item.container)], []).append(item.row)
        assert sent["experiment"] == {dest: {"events": events} for dest, events in expected.items()}
        if len(batch) > 1:  # a lone row over the cap still goes (and is split or offloaded on a 413)
            assert len(body(batch, shared)) <= cap


@settings(max_examples=100, deadline=None)
@given(
    rows=rows, owners=st.lists(st.sampled_from(["a", "b", "c"]), min_size=6, max_size=6), routed=st.booleans()
)
def test_a_packed_batch_holds_only_its_body_and_gives_each_row_back_to_its_item(
    rows: list[dict[str, Any]], owners: list[str], routed: bool
) -> None:
    """A batch waiting for its write keeps its body, not its rows; a 413 or a failure needs the rows
    one by one again, each back on its own item (routed bodies group rows by destination)."""
    shared = inserter({"a": "dest-a", "b": "dest-b", "c": "dest-c"} if routed else None)
    items = [encode(dict(row, id=f"r{n}"), {}, owners[n] if routed else None) for n, row in enumerate(rows)]
    expected = [(item.row_id, item.row) for item in items]
    sent = body(items, shared)
    packed = shared.pack(items)
    assert packed.body == sent
    assert all(item.row is None for item in packed.items)
    assert [(item.row_id, item.row) for item in shared.unpack(packed)] == expected
