"""``POST /btql``: native BTQL over event data (the subset of :mod:`.parse`).

Rows are the latest version of each row id, deleted rows excluded (as of the
``version`` option when given), exactly as fetch returns them, ``_xact_id`` and
``_pagination_key`` included.

Decided where the documentation is silent:

* ``filter:`` works on the indexed top-level fields ``id``, ``span_id``,
  ``root_span_id``, ``is_root``, ``created`` (ISO timestamps, compared as instants),
  ``_xact_id`` (numeric) and ``_pagination_key`` (compared as strings, like the hosted
  API); ``sort:`` on ``_pagination_key``, ``created`` or ``_xact_id`` (ties broken by
  ``_pagination_key``). Default sort: ``_pagination_key desc``; default limit: 1000
  (``disable_limit: true`` lifts it when the query has no ``limit:``).
* The cursor is opaque (base64 JSON) and means "strictly after the last row of this
  page in this sort order" (sort value, then ``_pagination_key``). It is returned for
  every non-empty page of a row query, in the body and the ``x-bt-cursor`` header; a
  cursor made for another sort is refused. Under ``sort: _pagination_key asc`` it is
  exactly the keyset ``_pagination_key > <last key>``: a row rewritten after it was
  read gets a new, larger key and comes again later. Aggregate queries return no cursor.
* Body options: ``fmt`` json / jsonl, ``version``, ``disable_limit`` and ``scope_to_root_span_id``
  are honoured; the other documented options and any unknown one are ignored, like the hosted API
  does. What the sandbox cannot do answers 400 naming it: ``fmt: parquet``, ``audit_log: true``.
* ``query`` may be native BTQL text or a parsed-query JSON object (what the SDK sends); the JSON
  is translated to the same AST (:mod:`.json`), so it supports exactly the text's subset.
* ``count(…)`` counts rows; ``dimensions:`` may name any top-level field (indexed ones
  are grouped in SQL, others in Python).
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.responses import Response

from braintrust_migrate.sandbox.btql.json import from_json
from braintrust_migrate.sandbox.btql.parse import And, BtqlError, Compare, Expr, IsNull, Not, Or, Query, parse
from braintrust_migrate.sandbox.core.common import Ctx, bad_request, request_json
from braintrust_migrate.sandbox.events.store import (
    KINDS,
    Container,
    canonical_time,
    container,
    decode_cursor,
    encode_cursor,
    micros,
    pagination_key,
    parse_xact,
)

DEFAULT_LIMIT = 1000
# Fields a filter / sort / SQL dimension can use, and their column.
COLUMNS = {
    "id": "id",
    "span_id": "span_id",
    "root_span_id": "root_span_id",
    "is_root": "is_root",
    "created": "created_us",
    "_xact_id": "xact_id",
    "_pagination_key": "seq",
}
SORTABLE = ("_pagination_key", "created", "_xact_id")
# Body options of POST /btql that do not change which rows come back, so the sandbox accepts
# and ignores them (the documented ones, listed for the reader). As on the hosted API, an option
# nobody documents is ignored too: clients add their own (the SDK's ``query_source``, the old
# migration tool's ``client_version``) and must not be broken by it.
IGNORED_OPTIONS = (
    "api_version",
    "client_version",
    "use_brainstore",
    "use_columnstore",
    "brainstore_realtime",
    "brainstore_skip_backfill_check",
    "brainstore_ephemeral_wal",
    "query_timeout_seconds",
    "tz_offset",
    "relaxed_search_mode",
    "overflow_results",
    "inference_depth",
    "force_push_limit",
    "expected_cost",
    "lint_mode",
    "custom_column_scope",
    "query_source",
)
# Options the sandbox honours: query, fmt (json / jsonl), version, disable_limit, scope_to_root_span_id.
_FORMATS = ("json", "jsonl")

_STRING_TYPES = {"type": "string"}
_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "id": _STRING_TYPES,
    "_xact_id": _STRING_TYPES,
    "_pagination_key": _STRING_TYPES,
    "created": {"type": "string", "format": "date-time"},
    "org_id": {"type": "string", "format": "uuid"},
    "project_id": {"type": "string", "format": "uuid"},
    "experiment_id": {"type": "string", "format": "uuid"},
    "dataset_id": {"type": "string", "format": "uuid"},
    "log_id": _STRING_TYPES,
    "span_id": _STRING_TYPES,
    "root_span_id": _STRING_TYPES,
    "is_root": {"type": "boolean"},
    "tags": {"type": "array", "items": _STRING_TYPES},
    "span_parents": {"type": "array", "items": _STRING_TYPES},
    "comments": {"type": "array"},
    "audit_data": {"type": "array"},
    "scores": {"type": "object"},
    "metadata": {"type": "object"},
    "metrics": {"type": "object"},
    "context": {"type": "object"},
    "span_attributes": {"type": "object"},
    "origin": {"type": "object"},
    "facets": {"type": "object"},
    "classifications": {"type": "object"},
}


def btql(ctx: Ctx) -> Response:
    body = request_json(ctx)
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: expected a JSON object")
    query_text = body.get("query")
    if not isinstance(query_text, str | dict):
        raise bad_request("query: expected a string of native BTQL or a parsed-query JSON object")
    fmt = body.get("fmt") or "json"
    if fmt not in _FORMATS:
        raise bad_request(f"fmt: {fmt!r} is not supported by the sandbox (supported: {', '.join(_FORMATS)})")
    if body.get("audit_log"):
        raise bad_request("audit_log: audit-log queries are not supported by the sandbox")
    root_span_id = body.get("scope_to_root_span_id")
    if root_span_id is not None and not isinstance(root_span_id, str):
        raise bad_request("scope_to_root_span_id: expected a string")
    version = parse_xact("version", body.get("version"))
    try:
        query = parse(query_text) if isinstance(query_text, str) else from_json(query_text)
    except BtqlError as exc:
        form = "" if isinstance(query_text, str) else " (parsed-query JSON)"
        raise bad_request(f"BTQL{form}: {exc}") from None
    return _run(ctx, query, version, bool(body.get("disable_limit")), root_span_id, fmt)


# --- running ------------------------------------------------------------------------------------


def _run(
    ctx: Ctx,
    q: Query,
    version: int | None,
    disable_limit: bool,
    root_span_id: str | None = None,
    fmt: str = "json",
) -> Response:
    assert q.source is not None
    kind = KINDS[q.source.kind]
    containers = [container(ctx.tx, ctx.caller.org_ids, kind, object_id) for object_id in q.source.ids]
    fields = kind.fields
    where, params = _live(version)
    if root_span_id is not None:  # the trace of that root span only
        where.append("root_span_id = ?")
        params.append(root_span_id)
    if q.filter is not None:
        sql, args = _compile(q.filter)
        where.append(sql)
        params += args
    limit = q.limit if q.limit is not None else (None if disable_limit else DEFAULT_LIMIT)
    if q.measures:
        if q.cursor is not None:
            raise bad_request("BTQL: 'cursor:' is not supported with 'measures:'")
        groups, schema = _aggregate(ctx, q, containers, fields, where, params, limit)
        return _respond(groups, schema, None, fmt)
    for item in q.select or ():
        if item.field not in fields:
            raise bad_request(f"BTQL: unknown field {item.field!r} in 'select:' for {kind.label} rows")
    sort_field, direction = q.sort or ("_pagination_key", "desc")
    if sort_field not in SORTABLE:
        raise bad_request(
            f"BTQL: sorting on {sort_field!r} is not supported (supported: {', '.join(SORTABLE)})"
        )
    if q.cursor is not None:
        sql, args = _after_cursor(q.cursor, sort_field, direction)
        where.append(sql)
        params += args
    rows = _rows(ctx, containers, where, params, COLUMNS[sort_field], direction, limit)
    cursor = _encode_cursor(sort_field, direction, rows[-1][0], rows[-1][1]) if rows else None
    if q.select is None:
        data: list[Any] = [orjson.Fragment(raw) for _, _, raw in rows]
        schema = _schema(fields)
    else:
        data = []
        for _, _, raw in rows:
            row = orjson.loads(raw)
            data.append({item.alias: row.get(item.field) for item in q.select})
        schema = _schema([item.alias for item in q.select], {i.alias: i.field for i in q.select})
    return _respond(data, schema, cursor, fmt)


def _respond(data: list[Any], schema: dict[str, Any], cursor: str | None, fmt: str = "json") -> Response:
    headers = {"x-bt-cursor": cursor} if cursor else None
    if fmt == "jsonl":  # one row per line; the cursor travels in the header only
        lines = b"".join(orjson.dumps(row) + b"\n" for row in data)
        return Response(lines, media_type="application/x-ndjson", headers=headers)
    payload = orjson.dumps({"data": data, "schema": schema, "cursor": cursor})
    return Response(payload, media_type="application/json", headers=headers)


def _schema(names: Any, sources: dict[str, str] | None = None) -> dict[str, Any]:
    props = {name: _FIELD_SCHEMAS.get((sources or {}).get(name, name), {}) for name in names}
    return {"type": "array", "items": {"type": "object", "properties": props}}


def _live(version: int | None) -> tuple[list[str], list[Any]]:
    if version is None:
        return ["sup_xact IS NULL", "deleted = 0"], []
    return ["xact_id <= ?", "(sup_xact IS NULL OR sup_xact > ?)", "deleted = 0"], [version, version]


def _rows(
    ctx: Ctx,
    containers: list[Container],
    where: list[str],
    params: list[Any],
    column: str,
    direction: str,
    limit: int | None,
) -> list[tuple[int, int, bytes]]:
    """(sort value, seq, body) of the page, merged across containers in sort order."""
    order = f"{column} {direction}" + ("" if column == "seq" else f", seq {direction}")
    sql = (
        f"SELECT {column}, seq, body FROM event_rows WHERE cid = ? AND {' AND '.join(where)} ORDER BY {order}"
    )
    tail: list[Any] = []
    if limit is not None:
        sql += " LIMIT ?"
        tail = [limit]
    streams = [
        ctx.tx.execute(sql, [c.cid, *params, *tail]).fetchall()
        for c in {c.cid: c for c in containers}.values()
    ]
    if len(streams) == 1:
        return streams[0]
    merged: Iterator[tuple[int, int, bytes]] = heapq.merge(
        *streams, key=lambda r: (r[0], r[1]), reverse=direction == "desc"
    )
    out = list(merged)
    return out if limit is None else out[:limit]


# --- filters ------------------------------------------------------------------------------------


def _compile(expr: Expr) -> tuple[str, list[Any]]:
    if isinstance(expr, And | Or):
        parts = [_compile(item) for item in expr.items]
        return _join(" AND " if isinstance(expr, And) else " OR ", parts)
    if isinstance(expr, Not):
        sql, args = _compile(expr.item)
        return f"(NOT {sql})", args
    column = _column(expr.field)
    if isinstance(expr, IsNull):
        # Every filterable field is always set on a stored row.
        return ("1" if expr.negate else "0"), []
    assert isinstance(expr, Compare)
    if expr.value is None:
        return "0", []  # SQL semantics: a comparison with null is never true
    if expr.field == "_pagination_key":
        return _key_compare(expr.op, expr.value)
    value = _operand(expr.field, expr.value)
    return f"{column} {expr.op} ?", [value]


def _join(joiner: str, parts: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """``(a OR b OR ...)`` as a balanced tree: SQLite parses a flat chain 1000+ levels deep."""
    if len(parts) > 8:
        half = len(parts) // 2
        parts = [_join(joiner, parts[:half]), _join(joiner, parts[half:])]
    return "(" + joiner.join(p[0] for p in parts) + ")", [a for p in parts for a in p[1]]


def _column(name: str) -> str:
    if name not in COLUMNS:
        raise bad_request(
            f"BTQL: filtering on {name!r} is not supported by the sandbox (supported: {', '.join(COLUMNS)})"
        )
    return COLUMNS[name]


def _operand(name: str, value: Any) -> Any:
    if name == "is_root":
        if not isinstance(value, bool):
            raise bad_request(f"BTQL: is_root compares with true or false, not {value!r}")
        return int(value)
    if isinstance(value, bool):
        raise bad_request(f"BTQL: {name} cannot be compared with a boolean")
    if name == "created":
        if not isinstance(value, str):
            raise bad_request(f"BTQL: created compares with an ISO timestamp string, not {value!r}")
        return micros(_timestamp(value))
    if name == "_xact_id":
        text = str(value) if isinstance(value, int) else value
        if not isinstance(text, str) or not text.isdigit():
            raise bad_request(f"BTQL: _xact_id compares with a transaction id (digits), not {value!r}")
        return int(text)
    if not isinstance(value, str):
        raise bad_request(f"BTQL: {name} compares with a string, not {value!r}")
    return value


def _timestamp(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"BTQL: {text!r} is not an ISO timestamp") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


_SEQS = range(2**63 - 1)  # every seq SQLite can hold (len() must fit a C ssize_t)


def _key_compare(op: str, value: Any) -> tuple[str, list[Any]]:
    """``_pagination_key <op> 'literal'`` as a range of ``seq`` (keys sort like their seq)."""
    if not isinstance(value, str):
        raise bad_request(f"BTQL: _pagination_key compares with a string, not {value!r}")
    first = bisect.bisect_left(_SEQS, value, key=pagination_key)  # first seq with key >= value
    after = bisect.bisect_right(_SEQS, value, key=pagination_key)  # first seq with key > value
    return {
        ">": ("seq >= ?", [after]),
        ">=": ("seq >= ?", [first]),
        "<": ("seq < ?", [first]),
        "<=": ("seq < ?", [after]),
        "=": ("(seq >= ? AND seq < ?)", [first, after]),
        "!=": ("(seq < ? OR seq >= ?)", [first, after]),
    }[op]


# --- cursors ------------------------------------------------------------------------------------


def _encode_cursor(sort_field: str, direction: str, value: int, seq: int) -> str:
    return encode_cursor({"v": 1, "sort": sort_field, "dir": direction, "at": [value, seq]})


def _after_cursor(cursor: str, sort_field: str, direction: str) -> tuple[str, list[Any]]:
    decoded = decode_cursor(cursor) or {}
    at = decoded.get("at")
    if not (isinstance(at, list) and len(at) == 2 and all(type(x) is int for x in at)):
        raise bad_request("BTQL: malformed cursor (pass back a cursor this server returned)")
    value, seq = at
    made_for = (decoded.get("sort"), decoded.get("dir"))
    if made_for != (sort_field, direction):
        raise bad_request(
            f"BTQL: this cursor was made for 'sort: {made_for[0]} {made_for[1]}', "
            f"not 'sort: {sort_field} {direction}'"
        )
    cmp = ">" if direction == "asc" else "<"
    if sort_field == "_pagination_key":
        return f"seq {cmp} ?", [seq]
    column = COLUMNS[sort_field]
    return f"({column} {cmp} ? OR ({column} = ? AND seq {cmp} ?))", [value, value, seq]


# --- aggregates ---------------------------------------------------------------------------------


def _aggregate(
    ctx: Ctx,
    q: Query,
    containers: list[Container],
    fields: tuple[str, ...],
    where: list[str],
    params: list[Any],
    limit: int | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    for item in q.dimensions:
        if item.field not in fields:
            raise bad_request(f"BTQL: unknown field {item.field!r} in 'dimensions:'")
    counts: dict[bytes, tuple[list[Any], int]] = {}
    cids = [c.cid for c in {c.cid: c for c in containers}.values()]
    scope = f"cid IN ({','.join('?' * len(cids))}) AND {' AND '.join(where)}"
    if all(item.field in COLUMNS for item in q.dimensions):
        columns = [COLUMNS[item.field] for item in q.dimensions]
        select = ", ".join([*columns, "count(*)"])
        group = f" GROUP BY {', '.join(columns)}" if columns else ""
        for record in ctx.tx.execute(
            f"SELECT {select} FROM event_rows WHERE {scope}{group}", [*cids, *params]
        ):
            values = [_column_value(item.field, v) for item, v in zip(q.dimensions, record, strict=False)]
            counts[orjson.dumps(values)] = (values, record[-1])
    else:
        for (raw,) in ctx.tx.execute(f"SELECT body FROM event_rows WHERE {scope}", [*cids, *params]):
            row = orjson.loads(raw)
            values = [row.get(item.field) for item in q.dimensions]
            key = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
            seen = counts.get(key)
            counts[key] = (values, (seen[1] if seen else 0) + 1)
    data = []
    for values, count in counts.values():
        row = {item.alias: value for item, value in zip(q.dimensions, values, strict=True)}
        row.update({m.alias: count for m in q.measures})
        data.append(row)
    names = [*(i.alias for i in q.dimensions), *(m.alias for m in q.measures)]
    if q.sort is not None:
        name, direction = q.sort
        if name not in names:
            raise bad_request(f"BTQL: with 'measures:', sort on a dimension or measure ({', '.join(names)})")
        data.sort(key=lambda r: _sort_key(r[name]), reverse=direction == "desc")
    if limit is not None:
        data = data[:limit]
    schema = _schema(names, {i.alias: i.field for i in q.dimensions})
    for m in q.measures:
        schema["items"]["properties"][m.alias] = {"type": "integer"}
    return data, schema


def _sort_key(value: Any) -> tuple[int, Any]:
    """Order mixed JSON values: numbers, strings, booleans, null, then anything else."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if value is None:
        return (3, 0)
    return (4, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def _column_value(name: str, value: Any) -> Any:
    if name == "is_root":
        return bool(value)
    if name == "created":
        return canonical_time(dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=value))
    if name == "_xact_id":
        return str(value)
    if name == "_pagination_key":
        return pagination_key(value)
    return value
