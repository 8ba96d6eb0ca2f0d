"""The BTQL builder (`btql.py`): exact text for literals, conditions and whole queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from braintrust_migrate import btql
from braintrust_migrate.btql import Query, all_of, any_of, cmp, eq, field_name, lit


def read_string_literal(text: str, start: int = 0) -> tuple[str, int]:
    """An independent reader of one BTQL string literal at `start`: (value, index after it)."""
    assert text[start] == "'"
    out, i = [], start + 1
    while True:
        char = text[i]
        if char == "\\":
            out.append(text[i + 1])
            i += 2
        elif char == "'":
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1


def outside_literals(text: str) -> str:
    """`text` with every string literal blanked out, to look at its structure only."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "'":
            _, i = read_string_literal(text, i)
            out.append("''")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("abc", "'abc'"),
        ("", "''"),
        ("it's", r"'it\'s'"),
        ("a\\b", r"'a\\b'"),
        ("\\'", r"'\\\''"),  # a backslash before a quote cannot un-escape it
        ("end\\", r"'end\\'"),  # nor can a trailing backslash swallow the closing quote
        ("line\nnext", "'line\nnext'"),
        ("é日本🙂", "'é日本🙂'"),
        ('say "hi"', "'say \"hi\"'"),
        ("x' or true or '", r"'x\' or true or \''"),
        (None, "null"),
        (True, "true"),  # bool before int: True is an int too
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (1.5, "1.5"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "'2024-01-02T03:04:05Z'"),
        (datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "'2024-01-02T03:04:05.120000Z'"),
        (datetime(2024, 1, 2, 3, 4, 5), "'2024-01-02T03:04:05'"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), "'2024-01-02T03:04:05+02:00'"),
    ],
)
def test_lit(value: object, text: str) -> None:
    assert lit(value) == text  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_lit_round_trips_any_text_as_one_literal(value: str) -> None:
    text = lit(value)
    decoded, end = read_string_literal(text)
    assert (decoded, end) == (value, len(text))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("id", "id"),
        ("metadata.model", "metadata.model"),
        ("my field", "`my field`"),
        ("metadata.user-id", "metadata.`user-id`"),
        ("scores.1st", "scores.`1st`"),
        ("métadonnée", "métadonnée"),
    ],
)
def test_field_name(name: str, text: str) -> None:
    assert field_name(name) == text


def test_field_name_with_a_backquote_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        field_name("a`b")


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        (eq("id", "a"), "id = 'a'"),
        (eq("id", "o'k"), r"id = 'o\'k'"),
        (eq("metadata.user id", 3), "metadata.`user id` = 3"),
        (eq("deleted", None), "deleted = null"),
        (eq("public", False), "public = false"),
        (cmp("_xact_id", ">", "1000"), "_xact_id > '1000'"),
        (cmp("_pagination_key", ">=", "p07"), "_pagination_key >= 'p07'"),
        (cmp("n", "<", 5), "n < 5"),
        (cmp("n", "<=", 5.5), "n <= 5.5"),
        (cmp("n", "!=", 0), "n != 0"),
        (cmp("created", "<", datetime(2024, 5, 1, tzinfo=UTC)), "created < '2024-05-01T00:00:00Z'"),
    ],
)
def test_eq_and_cmp(condition: str, text: str) -> None:
    assert condition == text


@pytest.mark.parametrize("op", ["==", "<>", "like", "", "= 1 or 1 ="])
def test_cmp_refuses_unknown_operators(op: str) -> None:
    with pytest.raises(ValueError, match="unknown BTQL operator"):
        cmp("n", op, 1)


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ([], "false"),  # matches nothing, as an empty IN would
        (["a"], "id = 'a'"),
        (["a", "b"], "(id = 'a' or id = 'b')"),
        (["b", "a", "b", "a"], "(id = 'b' or id = 'a')"),  # duplicates once, first order kept
        ([1, 2, 3], "(id = 1 or id = 2 or id = 3)"),
        (iter(["x", "y"]), "(id = 'x' or id = 'y')"),  # any iterable, read once
        (["a(", ")b"], "(id = 'a(' or id = ')b')"),
    ],
)
def test_any_of(values: object, text: str) -> None:
    assert any_of("id", values) == text  # type: ignore[arg-type]


def test_any_of_a_long_list_is_one_balanced_group() -> None:
    values = [f"id-{i}'(" for i in range(2000)]
    text = any_of("id", values)
    structure = outside_literals(text)
    assert structure.count(" or ") == 1999
    assert structure.startswith("(") and structure.endswith(")")
    assert structure.count("(") == structure.count(")") == 1
    depth = 0
    for char in structure:
        depth += {"(": 1, ")": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0


@pytest.mark.parametrize(
    ("conditions", "text"),
    [
        ([], ""),
        (["a = 1"], "a = 1"),
        (["a = 1", "", "b = 2"], "a = 1 and b = 2"),
        (["a = 1", "x = 1 or y = 2"], "a = 1 and (x = 1 or y = 2)"),  # or binds looser than and
        (["a = 1", any_of("id", ["p", "q"])], "a = 1 and (id = 'p' or id = 'q')"),
    ],
)
def test_all_of(conditions: list[str], text: str) -> None:
    assert all_of(conditions) == text


def test_all_of_groups_an_or_that_only_starts_with_a_parenthesis() -> None:
    assert all_of(["a = 1", "(b = 2) or (c = 3)"]) == "a = 1 and ((b = 2) or (c = 3))"


def test_query_body_shape_and_full_text() -> None:
    query = Query(
        "experiment",
        ["e1", "e'2"],
        select=("id", "metadata.user id"),
        sort=[("_pagination_key", "asc"), ("created", "desc")],
        limit=500,
        cursor="cur'sor",
    ).where(cmp("_xact_id", ">", "7"), "", any_of("id", ["a", "b"]))
    assert query.body() == {
        "query": "\n".join(
            [
                "select: id, metadata.`user id`",
                r"from: experiment('e1', 'e\'2') spans",
                "filter: _xact_id > '7' and (id = 'a' or id = 'b')",
                "sort: _pagination_key asc, created desc",
                "limit: 500",
                r"cursor: 'cur\'sor'",
            ]
        ),
        "fmt": "json",
    }


@pytest.mark.parametrize(
    ("query", "text"),
    [
        (Query("project_logs", ["p1"]), "select: *\nfrom: project_logs('p1') spans"),
        (Query("dataset", ["d1"], shape="traces"), "select: *\nfrom: dataset('d1') traces"),
        (
            Query("dataset", ["d1"], measures=["count(1) as n"], select=("id",)),
            "measures: count(1) as n\nfrom: dataset('d1') spans",  # measures replace select
        ),
        (Query("dataset", ["d1"], limit=0), "select: *\nfrom: dataset('d1') spans\nlimit: 0"),
        (Query("dataset", ["d1"], cursor=""), "select: *\nfrom: dataset('d1') spans"),
        (Query("dataset", ["d1"]).where(""), "select: *\nfrom: dataset('d1') spans"),
    ],
)
def test_query_text(query: Query, text: str) -> None:
    assert query.text() == text


def test_where_appends_and_returns_the_query() -> None:
    query = Query("dataset", ["d1"])
    assert query.where("a = 1") is query
    query.where("b = 2")
    assert query.filters == ["a = 1", "b = 2"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (Query("prompt", ["x"]), "unknown container kind"),
        (Query("dataset", []), "at least one container id"),
        (Query("dataset", ["d"], sort=[("id", "up")]), "unknown sort direction"),
    ],
)
def test_query_refuses_what_it_cannot_write(query: Query, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        query.text()


def test_containers_are_the_three_event_kinds() -> None:
    assert {"project_logs", "experiment", "dataset"} == btql.CONTAINERS


@pytest.mark.parametrize(
    ("condition", "wrapped"),
    [
        ("(a = 1 or b = 2)", False),
        ("(a = 1) or (b = 2)", True),
        ("(x = ')' or y = 1)", False),
        ("(x = 'it\\'s (' ) or (y = 1)", True),
        ("(x = 'a\\\\') or (y = 1)", True),
    ],
)
def test_all_of_brackets_an_or_unless_one_pair_encloses_it(condition, wrapped):
    expected = f"a = 0 and ({condition})" if wrapped else f"a = 0 and {condition}"
    assert btql.all_of(["a = 0", condition]) == expected
