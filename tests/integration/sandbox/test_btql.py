"""``POST /btql``: the parser, the supported subset over HTTP, paging while a writer writes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from braintrust_migrate.sandbox.btql import parse as bp
from braintrust_migrate.sandbox.server import SandboxServer
from tests.integration.sandbox.helpers import Api

# --- parser -------------------------------------------------------------------------------------


def test_parser_reads_every_clause() -> None:
    q = bp.parse(
        """
        select: id, input as question
        from: experiment('a', 'b') spans
        filter: (created >= '2026-01-01T00:00:00Z' and not is_root = false)
                or _pagination_key > 'p01' or id != 'it''s'
        sort: created desc
        limit: 10
        cursor: 'abc'
        """
    )
    assert q.select == (bp.Item("id", "id"), bp.Item("input", "question"))
    assert q.source == bp.Source("experiment", ("a", "b"))
    assert q.sort == ("created", "desc") and q.limit == 10 and q.cursor == "abc"
    assert q.filter == bp.Or(
        (
            bp.And(
                (
                    bp.Compare("created", ">=", "2026-01-01T00:00:00Z"),
                    bp.Not(bp.Compare("is_root", "=", False)),
                )
            ),
            bp.Compare("_pagination_key", ">", "p01"),
            bp.Compare("id", "!=", "it's"),
        )
    )


def test_parser_accepts_pipes_case_and_flipped_comparisons() -> None:
    q = bp.parse("SELECT: * | FROM: dataset('d') | FILTER: 5 < _xact_id AND id IS NOT NULL | LIMIT: 1")
    assert q.star and q.select is None and q.limit == 1
    assert q.filter == bp.And((bp.Compare("_xact_id", ">", 5), bp.IsNull("id", negate=True)))
    agg = bp.parse("measures: count(1) as n, count(*)\ndimensions: is_root as root\nfrom: project_logs('p')")
    assert agg.measures == (bp.Measure("count", "n"), bp.Measure("count", "count"))
    assert agg.dimensions == (bp.Item("is_root", "root"),)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty query"),
        ("select: *", "needs a 'from:' clause"),
        ("from: prompt('x')", "source prompt(…) is not supported"),
        ("from: project_logs('x') traces", "'traces' shape is not supported"),
        ("from: project_logs('x')\nunnest: tags", "'unnest:' clause is not supported"),
        ("from: project_logs('x')\nwhere: id = 'a'", "unknown clause 'where:'"),
        ("from: project_logs('x')\nfilter: metadata.env = 'prod'", "nested field paths"),
        ("from: project_logs('x')\nfilter: id LIKE 'a%'", "operator LIKE is not supported"),
        ("from: project_logs('x')\nfilter: lower(id) = 'a'", "function calls"),
        ("from: project_logs('x')\nfilter: id = span_id", "comparing two fields"),
        ("from: project_logs('x')\nfilter: id = \"a\"", "single quotes"),
        ("from: project_logs('x')\nsort: created asc, id desc", "several fields"),
        ("from: project_logs('x')\nmeasures: sum(scores)", "sum(…) is not supported"),
        ("from: project_logs('x')\nlimit: -1", "non-negative integer"),
        ("from: project_logs('x')\nlimit: 1\nlimit: 2", "given twice"),
        ("from: project_logs('x')\ndimensions: id", "needs 'measures:'"),
        ("select: id\nmeasures: count(1)\nfrom: project_logs('x')", "cannot be combined"),
        ("from: project_logs('x')\nfilter: (id = 'a'", "to close '('"),
        ("from: project_logs('x')\nfilter: id = 'a", "unterminated string"),
        ("from: project_logs('x') spans junk", "unexpected 'junk'"),
    ],
)
def test_parser_errors_say_what_is_unsupported(query: str, message: str) -> None:
    with pytest.raises(bp.BtqlError) as err:
        bp.parse(query)
    assert message in str(err.value)


# --- over HTTP ----------------------------------------------------------------------------------


def run(api: Api, query: str, status: int = 200, **options: Any) -> httpx.Response:
    response = api.client.post("/btql", json={"query": query, "fmt": "json", **options})
    assert response.status_code == status, response.text
    return response


def data(api: Api, query: str, **options: Any) -> list[dict[str, Any]]:
    return run(api, query, **options).json()["data"]


def insert(api: Api, path: str, events: list[dict[str, Any]]) -> list[str]:
    return api.post(f"{path}/insert", {"events": events})["row_ids"]


@pytest.fixture
def filled(api: Api, project: dict) -> dict[str, Any]:
    """Five rows in two requests: r0-r2 (traces T0 with children), r3-r4; r1 rewritten; r4 deleted."""
    path = f"/v1/project_logs/{project['id']}"
    insert(
        api,
        path,
        [
            {"id": "r0", "created": "2026-01-01T00:00:00Z", "span_id": "s0", "root_span_id": "T0"},
            {
                "id": "r1",
                "created": "2026-01-02T00:00:00Z",
                "span_id": "s1",
                "root_span_id": "T0",
                "span_parents": ["s0"],
            },
            {
                "id": "r2",
                "created": "2026-01-03T00:00:00Z",
                "span_id": "s2",
                "root_span_id": "T0",
                "span_parents": ["s0"],
            },
        ],
    )
    insert(
        api,
        path,
        [
            {"id": "r3", "created": "2026-01-04T00:00:00.5Z", "span_id": "s3", "root_span_id": "T3"},
            {"id": "r4", "created": "2026-01-05T00:00:00Z"},
        ],
    )
    insert(api, path, [{"id": "r1", "_is_merge": True, "input": "rewritten"}])
    insert(api, path, [{"id": "r4", "_object_delete": True}])
    return {"project": project, "from": f"from: project_logs('{project['id']}') spans"}


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


def test_select_star_returns_latest_live_rows_with_all_fields(api: Api, filled: dict) -> None:
    rows = data(api, f"select: *\n{filled['from']}\nsort: _pagination_key asc")
    assert ids(rows) == ["r0", "r2", "r3", "r1"]  # r1 rewritten last; r4 deleted
    by_id = {r["id"]: r for r in rows}
    assert by_id["r1"]["input"] == "rewritten"
    for row in rows:
        assert row["project_id"] == filled["project"]["id"] and row["log_id"] == "g"
        assert row["_xact_id"].isdigit() and row["_pagination_key"].startswith("p")
    fetched = {
        r["id"]: r for r in api.post(f"/v1/project_logs/{filled['project']['id']}/fetch", {})["events"]
    }
    assert all(fetched[r["id"]] == r for r in rows if r["id"] != "r1")  # the same rows as fetch
    assert run(api, f"{filled['from']}").json()["schema"]["items"]["properties"]["is_root"] == {
        "type": "boolean"
    }


def test_select_list_and_aliases(api: Api, filled: dict) -> None:
    rows = data(
        api, f"select: id, input as q, is_root\n{filled['from']}\nsort: _pagination_key asc\nlimit: 2"
    )
    assert rows == [{"id": "r0", "q": None, "is_root": True}, {"id": "r2", "q": None, "is_root": False}]
    run(api, f"select: nope\n{filled['from']}", 400)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("id = 'r2'", ["r2"]),
        ("id != 'r2'", ["r0", "r3", "r1"]),
        ("id < 'r2'", ["r0", "r1"]),
        ("id <= 'r2'", ["r0", "r2", "r1"]),
        ("id > 'r2'", ["r3"]),
        ("id >= 'r2'", ["r2", "r3"]),
        ("span_id = 's3'", ["r3"]),
        ("root_span_id = 'T0'", ["r0", "r2", "r1"]),
        ("is_root = true", ["r0", "r3"]),
        ("is_root != true", ["r2", "r1"]),
        ("created >= '2026-01-02T00:00:00Z'", ["r2", "r3", "r1"]),
        ("created > '2026-01-02T00:00:00+00:00'", ["r2", "r3"]),
        ("created < '2026-01-04T00:00:00.5Z'", ["r0", "r2", "r1"]),
        ("created <= '2026-01-04T00:00:00.500000Z'", ["r0", "r2", "r3", "r1"]),
        ("created = '2026-01-03'", ["r2"]),
        ("not id = 'r0' and (is_root or_placeholder)", None),
        ("(id = 'r0' or id = 'r3') and not is_root = false", ["r0", "r3"]),
        ("not (id = 'r0' or id = 'r3')", ["r2", "r1"]),
        ("id = 'r0' or id = 'r1' and is_root = true", ["r0"]),
        ("id is null", []),
        ("id is not null", ["r0", "r2", "r3", "r1"]),
        ("id = null", []),
    ],
)
def test_filters(api: Api, filled: dict, condition: str, expected: list[str] | None) -> None:
    query = f"select: id\n{filled['from']}\nfilter: {condition}\nsort: _pagination_key asc"
    if expected is None:
        run(api, query, 400)
        return
    assert ids(data(api, query)) == expected


def test_filters_on_xact_and_pagination_key(api: Api, filled: dict) -> None:
    rows = data(api, f"select: *\n{filled['from']}\nsort: _pagination_key asc")
    keys = [r["_pagination_key"] for r in rows]
    xacts = sorted({r["_xact_id"] for r in rows})
    base = f"select: id\n{filled['from']}\nsort: _pagination_key asc\nfilter: "
    assert ids(data(api, base + f"_pagination_key > '{keys[1]}'")) == ["r3", "r1"]
    assert ids(data(api, base + f"_pagination_key >= '{keys[1]}'")) == ["r2", "r3", "r1"]
    assert ids(data(api, base + f"_pagination_key < '{keys[1]}'")) == ["r0"]
    assert ids(data(api, base + f"_pagination_key <= '{keys[1]}'")) == ["r0", "r2"]
    assert ids(data(api, base + f"_pagination_key = '{keys[2]}'")) == ["r3"]
    assert ids(data(api, base + f"_pagination_key != '{keys[2]}'")) == ["r0", "r2", "r1"]
    assert ids(data(api, base + "_pagination_key > ''")) == ["r0", "r2", "r3", "r1"]
    assert ids(data(api, base + "_pagination_key > 'q'")) == []
    assert ids(data(api, base + f"_pagination_key > '{keys[0]}x'")) == ["r2", "r3", "r1"]  # any string
    assert ids(data(api, base + f"_xact_id = '{xacts[0]}'")) == ["r0", "r2"]
    assert ids(data(api, base + f"_xact_id > {xacts[0]}")) == ["r3", "r1"]
    for bad in (
        "_pagination_key > 5",
        "created > 'yesterday'",
        "is_root = 1",
        "metadata = 'x'",
        "_xact_id = 'x'",
    ):
        assert "BTQL" in run(api, base + bad, 400).json()["error"]


def test_sorts(api: Api, filled: dict) -> None:
    def order(sort: str) -> list[str]:
        return ids(data(api, f"select: id\n{filled['from']}\nsort: {sort}"))

    assert order("_pagination_key asc") == ["r0", "r2", "r3", "r1"]
    assert order("_pagination_key desc") == ["r1", "r3", "r2", "r0"]
    assert ids(data(api, f"select: id\n{filled['from']}")) == ["r1", "r3", "r2", "r0"]  # default
    assert order("created") == ["r0", "r1", "r2", "r3"]
    assert order("created desc") == ["r3", "r2", "r1", "r0"]
    assert order("_xact_id asc") == ["r0", "r2", "r3", "r1"]
    assert order("_xact_id desc") == ["r1", "r3", "r2", "r0"]
    assert "sorting on 'id'" in run(api, f"{filled['from']}\nsort: id", 400).json()["error"]


@pytest.mark.parametrize(
    "sort", ["_pagination_key asc", "_pagination_key desc", "created asc", "_xact_id desc"]
)
def test_cursor_pages_in_body_and_header(api: Api, filled: dict, sort: str) -> None:
    everything = ids(data(api, f"select: id\n{filled['from']}\nsort: {sort}"))
    seen: list[str] = []
    cursor = None
    while True:
        query = f"select: id\n{filled['from']}\nsort: {sort}\nlimit: 1" + (
            f"\ncursor: '{cursor}'" if cursor else ""
        )
        response = run(api, query)
        body = response.json()
        if not body["data"]:
            assert body["cursor"] is None and "x-bt-cursor" not in response.headers
            break
        assert response.headers["x-bt-cursor"] == body["cursor"]
        seen += ids(body["data"])
        cursor = body["cursor"]
    assert seen == everything


def test_cursor_errors(api: Api, filled: dict) -> None:
    first = run(api, f"{filled['from']}\nsort: created asc\nlimit: 1").json()["cursor"]
    message = run(api, f"{filled['from']}\nsort: created desc\ncursor: '{first}'", 400).json()["error"]
    assert "made for 'sort: created asc'" in message
    run(api, f"{filled['from']}\ncursor: 'not-a-cursor'", 400)


def test_count_with_and_without_dimensions(api: Api, filled: dict) -> None:
    assert data(api, f"measures: count(1) as n\n{filled['from']}") == [{"n": 4}]
    by_root = data(api, f"measures: count(1) as n\ndimensions: is_root\n{filled['from']}\nsort: is_root asc")
    assert by_root == [{"is_root": False, "n": 2}, {"is_root": True, "n": 2}]
    by_trace = data(
        api, f"measures: count(1) as n\ndimensions: root_span_id as t\n{filled['from']}\nsort: n desc"
    )
    assert by_trace[0] == {"t": "T0", "n": 3}
    by_input = data(api, f"measures: count(1) as n\ndimensions: input\n{filled['from']}\nsort: n desc")
    assert by_input == [{"input": None, "n": 3}, {"input": "rewritten", "n": 1}]
    filtered = data(api, f"measures: count(1) as n\n{filled['from']}\nfilter: is_root = true")
    assert filtered == [{"n": 2}]
    run(api, f"measures: count(1) as n\n{filled['from']}\nsort: id", 400)


def test_several_ids_in_from_and_org_isolation(
    api: Api, project: dict, make_api: Callable[[str | None], Api], sandbox_server: SandboxServer
) -> None:
    a = api.post("/v1/experiment", {"project_id": project["id"], "name": "a"})
    b = api.post("/v1/experiment", {"project_id": project["id"], "name": "b"})
    insert(api, f"/v1/experiment/{a['id']}", [{"id": "a1"}, {"id": "a2"}])
    insert(api, f"/v1/experiment/{b['id']}", [{"id": "b1"}])
    insert(api, f"/v1/experiment/{a['id']}", [{"id": "a3"}])
    source = f"from: experiment('{a['id']}', '{b['id']}') spans"
    assert ids(data(api, f"select: id\n{source}\nsort: _pagination_key asc")) == ["a1", "a2", "b1", "a3"]
    assert ids(data(api, f"select: id\n{source}\nsort: _pagination_key desc\nlimit: 2")) == ["a3", "b1"]
    assert data(api, f"measures: count(1) as n\n{source}") == [{"n": 4}]
    other = make_api(sandbox_server.create_org("btql-other").api_key)
    assert other.client.post("/btql", json={"query": f"select: *\n{source}"}).status_code == 404
    missing = f"from: experiment('{a['id']}', '00000000-0000-4000-8000-000000000000')"
    assert api.client.post("/btql", json={"query": missing}).status_code == 404


def test_options(api: Api, filled: dict) -> None:
    source = filled["from"]
    assert len(data(api, f"{source}\nlimit: 2", disable_limit=True)) == 2
    assert len(data(api, source, disable_limit=True, use_brainstore=True, api_version=1, tz_offset=60)) == 4
    first_xact = min(r["_xact_id"] for r in data(api, source))
    then = data(api, f"select: id, input\n{source}\nsort: _pagination_key asc", version=first_xact)
    assert then == [{"id": "r0", "input": None}, {"id": "r1", "input": None}, {"id": "r2", "input": None}]
    for body, word in (
        ({"query": {"select": []}}, "parsed-query"),
        ({"query": source, "fmt": "parquet"}, "fmt"),
        ({"query": source, "audit_log": True}, "audit_log"),
        ({"query": source, "version": "abc"}, "version"),
    ):
        response = api.client.post("/btql", json=body)
        assert response.status_code == 400 and word in response.json()["error"], response.text
    assert api.client.post("/btql", content=b"{").status_code == 400
    assert (
        Api(api.client.base_url.__str__(), None).client.post("/btql", json={"query": source}).status_code
        == 401
    )


# --- paging while writing -----------------------------------------------------------------------


def test_keyset_paging_during_writes_sees_every_row(
    api: Api, project: dict, sandbox_server: SandboxServer
) -> None:
    """A reader pages ``_pagination_key > last`` while a writer adds rows and rewrites old ones."""
    path = f"/v1/project_logs/{project['id']}"
    key = api.client.headers["Authorization"]
    insert(api, path, [{"id": f"seed-{i}", "input": 0} for i in range(300)])
    latest: dict[str, int] = {f"seed-{i}": 0 for i in range(300)}
    done, reading = threading.Event(), threading.Event()

    def write() -> None:
        reading.wait(10)
        with httpx.Client(base_url=sandbox_server.url, headers={"Authorization": key}) as client:
            for round_ in range(1, 41):
                events = [{"id": f"new-{round_}-{j}", "input": round_} for j in range(10)]
                events += [{"id": f"seed-{(round_ * 7 + j) % 300}", "input": round_} for j in range(5)]
                client.post(f"{path}/insert", json={"events": events}).raise_for_status()
                latest.update({e["id"]: e["input"] for e in events})
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    last_seen: dict[str, int] = {}
    last_key, finished = "", False
    while True:
        query = (
            f"select: id, input, _pagination_key\nfrom: project_logs('{project['id']}') spans\n"
            f"filter: _pagination_key > '{last_key}'\nsort: _pagination_key asc\nlimit: 37"
        )
        page = data(api, query)
        reading.set()  # the writer starts once the reader is under way
        for row in page:
            assert row["_pagination_key"] > last_key
            last_seen[row["id"]] = row["input"]
            last_key = row["_pagination_key"]
        if not page:
            if finished:
                break
            finished = done.is_set()  # one more empty page after the writer is done
    writer.join()
    assert set(last_seen) == set(latest)
    assert last_seen == latest
