"""Fast validation of insert events against the spec's ``Insert*Event`` schemas.

A generic JSON Schema validator costs ~150 µs per event, which alone would cap the
sandbox below 7k rows/s. The insert event schemas are flat and small, so each field
gets a hand-written check of exactly what the (nullable-fixed) schema says; the
field sets themselves are read from the spec, and importing this module fails if
the spec gains an insert field this module does not know. ``tests/sandbox/
test_events_validate.py`` checks these checks agree with ``jsonschema`` on
generated events.

One rule goes beyond JSON Schema (the insert schemas are open): a field that the
container's insert schema does not list is refused, e.g. ``output`` on a dataset,
so that a client cannot believe it stored data the API does not keep.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from braintrust_migrate.sandbox.core import spec

Check = Callable[[Any, str], str | None]


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _is_integer(value: Any) -> bool:
    # JSON Schema: an integer is any number with a zero fractional part (1.0 counts).
    return type(value) is int or (type(value) is float and value.is_integer())


def _wrong(path: str, value: Any, expected: str) -> str:
    return f"{path}: expected {expected}, got {_type_name(value)}"


def _any(value: Any, path: str) -> str | None:
    return None


def _str_or_null(value: Any, path: str) -> str | None:
    return None if value is None or type(value) is str else _wrong(path, value, "a string or null")


def _bool_or_null(value: Any, path: str) -> str | None:
    return None if value is None or type(value) is bool else _wrong(path, value, "a boolean or null")


def _str_list_or_null(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if type(value) is not list:
        return _wrong(path, value, "an array of strings or null")
    for i, item in enumerate(value):
        if type(item) is not str:
            return _wrong(f"{path}[{i}]", item, "a string")
    return None


def _number_or_null(value: Any, path: str) -> str | None:
    return None if value is None or _is_number(value) else _wrong(path, value, "a number or null")


def _integer_or_null(value: Any, path: str) -> str | None:
    return None if value is None or _is_integer(value) else _wrong(path, value, "an integer or null")


def _object(
    props: dict[str, Check], extra: Check, *, label: str = "an object or null"
) -> Callable[[Any, str], str | None]:
    def check(value: Any, path: str) -> str | None:
        if value is None:
            return None
        if type(value) is not dict:
            return _wrong(path, value, label)
        for key, item in value.items():
            error = props.get(key, extra)(item, f"{path}.{key}")
            if error:
                return error
        return None

    return check


def _score(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not _is_number(value):
        return _wrong(path, value, "a number between 0 and 1 or null")
    if not 0 <= value <= 1:
        return f"{path}: {value} is not between 0 and 1"
    return None


def _metric(value: Any, path: str) -> str | None:
    return None if _is_number(value) else _wrong(path, value, "a number")


def parse_datetime(value: str) -> dt.datetime | None:
    """An RFC 3339 date-time with an offset, as the sandbox's ``date-time`` format accepts it."""
    if "T" not in value.upper():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _datetime_or_null(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        return _wrong(path, value, "a date-time string or null")
    if parse_datetime(value) is None:
        return f"{path}: {value!r} is not an RFC 3339 date-time with a time zone"
    return None


_SPAN_TYPES = frozenset(spec.resolve("/components/schemas/SpanType")["enum"])
_ORIGIN_TYPES = tuple(
    spec.resolve("/components/schemas/ObjectReferenceNullish")["properties"]["object_type"]["enum"]
)


def _span_type(value: Any, path: str) -> str | None:
    if value is not None and type(value) is not str:
        return _wrong(path, value, "a string or null")
    if value not in _SPAN_TYPES:
        return f"{path}: {value!r} is not one of {sorted(t for t in _SPAN_TYPES if t)}"
    return None


def _purpose(value: Any, path: str) -> str | None:
    if value is None or (value == "scorer" and type(value) is str):
        return None
    return f"{path}: {value!r} is not one of ['scorer', None]"


def _origin(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if type(value) is not dict:
        return _wrong(path, value, "an object or null")
    for required in ("object_type", "object_id", "id"):
        if required not in value:
            return f"{path}: {required!r} is a required property"
    object_type, object_id = value["object_type"], value["object_id"]
    if type(object_type) is not str or object_type not in _ORIGIN_TYPES:
        return f"{path}.object_type: {object_type!r} is not one of {list(_ORIGIN_TYPES)}"
    if type(object_id) is not str:
        return _wrong(f"{path}.object_id", object_id, "a string")
    if not spec.format_checker().conforms(object_id, "uuid"):
        return f"{path}.object_id: {object_id!r} is not a 'uuid'"
    if type(value["id"]) is not str:
        return _wrong(f"{path}.id", value["id"], "a string")
    for key in ("_xact_id", "created"):
        error = _str_or_null(value.get(key), f"{path}.{key}")
        if error:
            return error
    return None


def _path_list(value: Any, path: str) -> str | None:
    if type(value) is not list:
        return _wrong(path, value, "an array of strings")
    for i, item in enumerate(value):
        if type(item) is not str:
            return _wrong(f"{path}[{i}]", item, "a string")
    return None


def _merge_paths(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if type(value) is not list:
        return _wrong(path, value, "an array of paths or null")
    for i, item in enumerate(value):
        error = _path_list(item, f"{path}[{i}]")
        if error:
            return error
    return None


def _array_delete(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if type(value) is not list:
        return _wrong(path, value, "an array or null")
    for i, item in enumerate(value):
        here = f"{path}[{i}]"
        if type(item) is not dict:
            return _wrong(here, item, "an object")
        for required in ("path", "delete"):
            if required not in item:
                return f"{here}: {required!r} is a required property"
        error = _path_list(item["path"], f"{here}.path")
        if error:
            return error
        if type(item["delete"]) is not list:
            return _wrong(f"{here}.delete", item["delete"], "an array")
    return None


CHECKS: dict[str, Check] = {
    "input": _any,
    "output": _any,
    "expected": _any,
    "error": _any,
    "scores": _object({}, _score),
    "metadata": _object({"model": _str_or_null}, _any),
    "tags": _str_list_or_null,
    "metrics": _object(
        {
            "start": _number_or_null,
            "end": _number_or_null,
            "prompt_tokens": _integer_or_null,
            "completion_tokens": _integer_or_null,
            "tokens": _integer_or_null,
            "caller_functionname": _any,
            "caller_filename": _any,
            "caller_lineno": _any,
        },
        _metric,
    ),
    "context": _object(
        {
            "caller_functionname": _str_or_null,
            "caller_filename": _str_or_null,
            "caller_lineno": _integer_or_null,
        },
        _any,
    ),
    "span_attributes": _object({"name": _str_or_null, "type": _span_type, "purpose": _purpose}, _any),
    "id": _str_or_null,
    "created": _datetime_or_null,
    "origin": _origin,
    "facets": _object({}, _any),
    "_object_delete": _bool_or_null,
    "_is_merge": _bool_or_null,
    "_merge_paths": _merge_paths,
    "_array_delete": _array_delete,
    "_parent_id": _str_or_null,
    "span_id": _str_or_null,
    "root_span_id": _str_or_null,
    "span_parents": _str_list_or_null,
}

INSERT_SCHEMAS = {
    "project_logs": "InsertProjectLogsEvent",
    "experiment": "InsertExperimentEvent",
    "dataset": "InsertDatasetEvent",
}
ALLOWED: dict[str, dict[str, Check]] = {}
for _kind, _schema in INSERT_SCHEMAS.items():
    _props = spec.schema_properties(_schema)
    _unknown = set(_props) - set(CHECKS)
    if _unknown:
        raise RuntimeError(f"{_schema} has fields events_validate does not check: {sorted(_unknown)}")
    ALLOWED[_kind] = {name: CHECKS[name] for name in _props}


def event_error(kind: str, event: Any, path: str) -> str | None:
    """Why ``event`` is not a valid insert event for a ``kind`` container (None when it is)."""
    if type(event) is not dict:
        return _wrong(path, event, "an object")
    allowed = ALLOWED[kind]
    for key, value in event.items():
        check = allowed.get(key)
        if check is None:
            return (
                f"{path}.{key}: {INSERT_SCHEMAS[kind]} has no field {key!r}; "
                f"a {kind.replace('_', ' ')} event cannot store it"
            )
        error = check(value, f"{path}.{key}")
        if error:
            return error
    return None
