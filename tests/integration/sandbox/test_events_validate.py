"""The hand-written insert-event checks agree with the spec's JSON Schema on generated events."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from braintrust_migrate.sandbox.core import spec
from braintrust_migrate.sandbox.events.validate import ALLOWED, INSERT_SCHEMAS, event_error

UUID = "6a3f0c1e-1b2c-4d5e-8f90-123456789abc"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
numbers = st.integers(-2, 3) | st.floats(-0.5, 1.5, allow_nan=False) | st.sampled_from([0.0, 1.0, 2.0])
scalars = st.none() | st.booleans() | numbers | st.text(max_size=4)
strings_or_not = st.text(max_size=6) | scalars | st.lists(st.text(max_size=3), max_size=2)
dates = st.sampled_from(
    [
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05.123456+02:00",
        "2026-01-02t03:04:05z",
        "2026-01-02",
        "2026-01-02T03:04:05",
        "yesterday",
        "2026-13-02T03:04:05Z",
    ]
)


def maps(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | scalars | st.dictionaries(st.sampled_from(keys), values, max_size=4)


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "input": json_values,
    "output": json_values,
    "expected": json_values,
    "error": json_values,
    "scores": maps(["a", "b", "c"], numbers | st.none() | st.booleans() | st.text(max_size=2)),
    "metadata": maps(["model", "x"], scalars | json_values),
    "tags": st.none() | st.lists(st.text(max_size=3) | scalars, max_size=3) | scalars,
    "metrics": maps(
        ["start", "end", "tokens", "prompt_tokens", "completion_tokens", "caller_lineno", "custom"],
        numbers | st.none() | st.booleans() | st.text(max_size=2),
    ),
    "context": maps(["caller_functionname", "caller_filename", "caller_lineno", "other"], scalars),
    "span_attributes": maps(
        ["name", "type", "purpose", "extra"],
        st.sampled_from(["llm", "task", "scorer", "bogus", "score"]) | scalars,
    ),
    "id": strings_or_not,
    "created": st.none() | dates | numbers,
    "origin": st.none()
    | scalars
    | st.fixed_dictionaries(
        {},
        optional={
            "object_type": st.sampled_from(["experiment", "dataset", "nope"]) | scalars,
            "object_id": st.sampled_from([UUID, "not-a-uuid", UUID.upper()]) | scalars,
            "id": strings_or_not,
            "_xact_id": strings_or_not,
            "created": strings_or_not,
            "other": json_values,
        },
    ),
    "facets": maps(["f"], json_values),
    "_object_delete": scalars,
    "_is_merge": scalars,
    "_merge_paths": st.none()
    | scalars
    | st.lists(st.lists(st.text(max_size=2), max_size=2) | scalars, max_size=2),
    "_array_delete": st.none()
    | scalars
    | st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "path": st.lists(st.text(max_size=2) | scalars, max_size=2) | scalars,
                "delete": json_values,
            },
        )
        | scalars,
        max_size=2,
    ),
    "_parent_id": strings_or_not,
    "span_id": strings_or_not,
    "root_span_id": strings_or_not,
    "span_parents": st.none() | st.lists(st.text(max_size=3) | scalars, max_size=2) | scalars,
}


@st.composite
def events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(INSERT_SCHEMAS)))
    names = draw(st.sets(st.sampled_from(sorted(ALLOWED[kind])), max_size=4))
    return kind, {name: draw(FIELDS[name]) for name in sorted(names)}


def test_every_insert_field_has_a_strategy() -> None:
    assert set(FIELDS) == {name for allowed in ALLOWED.values() for name in allowed}


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(events())
def test_fast_checks_agree_with_json_schema(case: tuple[str, dict[str, Any]]) -> None:
    kind, event = case
    expected_errors = spec.validate_component(INSERT_SCHEMAS[kind], event)
    error = event_error(kind, event, "event")
    assert (error is None) == (expected_errors == []), (kind, event, error, expected_errors)
    if error is not None:
        assert error.startswith("event.")


def test_fields_outside_the_container_schema_are_refused() -> None:
    assert event_error("dataset", {"output": 1}, "e") is not None
    assert "InsertDatasetEvent has no field 'output'" in (event_error("dataset", {"output": 1}, "e") or "")
    assert event_error("experiment", {"output": 1, "span_attributes": {"type": "llm"}}, "e") is None
    assert event_error("project_logs", {"mystery": 1}, "e") is not None
    assert event_error("project_logs", [1], "e") == "e: expected an object, got array"
