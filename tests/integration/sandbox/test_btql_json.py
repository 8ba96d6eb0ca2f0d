"""``POST /btql`` with ``query`` as a parsed-query JSON object (what the official SDK sends):
it means exactly what the equivalent native text means, and what the sandbox cannot do is a
400 naming the part. Oracles: the text form over plain HTTP, and the SDK in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from braintrust_migrate.sandbox.btql import parse as bp
from braintrust_migrate.sandbox.btql.json import from_json
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from tests.integration.sandbox.helpers import Api


def ident(*name: str) -> dict[str, Any]:
    return {"op": "ident", "name": list(name)}


def lit(value: Any) -> dict[str, Any]:
    return {"op": "literal", "value": value}


def cmp(op: str, field: str, value: Any) -> dict[str, Any]:
    return {"op": op, "left": ident(field), "right": lit(value)}


def source(kind: str, *ids: str) -> dict[str, Any]:
    return {"op": "function", "name": ident(kind), "args": [lit(i) for i in ids]}


def sdk_fetch_query(kind: str, object_id: str, **internal_btql: Any) -> dict[str, Any]:
    """The object ``ObjectFetcher._refetch`` (braintrust/logger.py) sends, ``_internal_btql`` merged in."""
    return {
        "select": [{"op": "star"}],
        "from": {"op": "function", "name": {"op": "ident", "name": [kind]}, "args": [lit(object_id)]},
        "cursor": None,
        "limit": 1000,
        **internal_btql,
    }


# --- translation --------------------------------------------------------------------------------


def test_sdk_shapes_translate_to_the_text_ast() -> None:
    # SpanFetcher (braintrust/trace.py): "and" with children; btx/span_fetcher.py: binary left/right.
    children = {
        "op": "and",
        "children": [cmp("eq", "root_span_id", "T0"), {"op": "or", "children": [
            {"op": "isnull", "expr": ident("span_id")}, cmp("ne", "span_id", "x")]}],
    }  # fmt: skip
    binary = {"op": "and", "left": cmp("eq", "root_span_id", "T0"), "right": cmp("ge", "created", "2026")}
    sort = [{"expr": ident("created"), "dir": "asc"}]
    assert from_json(sdk_fetch_query("project_logs", "p", filter=children, sort=sort)) == bp.parse(
        "select: * | from: project_logs('p') | filter: root_span_id = 'T0' and (span_id is null or "
        "span_id != 'x') | sort: created asc | limit: 1000"
    )
    q = from_json(sdk_fetch_query("experiment", "e", filter=binary))
    assert q.star and q.source == bp.Source("experiment", ("e",)) and q.cursor is None
    assert q.filter == bp.And((bp.Compare("root_span_id", "=", "T0"), bp.Compare("created", ">=", "2026")))
    flipped = {"op": "lt", "left": lit(5), "right": ident("_xact_id")}
    assert from_json({"from": source("dataset", "d"), "filter": {"op": "not", "expr": flipped}}).filter == (
        bp.Not(bp.Compare("_xact_id", ">", 5))
    )


# --- over HTTP ----------------------------------------------------------------------------------


def post(api: Api, query: Any, status: int = 200) -> dict[str, Any]:
    response = api.client.post("/btql", json={"query": query, "fmt": "json"})
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def logs(api: Api, project: dict) -> str:
    rows = [
        {"id": "a", "created": "2026-01-01T00:00:00Z", "span_id": "sa", "root_span_id": "T0"},
        {"id": "b", "created": "2026-01-02T00:00:00Z", "span_id": "sb", "root_span_id": "T0"},
        {"id": "c", "created": "2026-01-03T00:00:00Z", "span_id": "sc", "root_span_id": "T1"},
        {"id": "d", "created": "2026-01-04T00:00:00Z", "span_id": "sd", "root_span_id": "T1"},
    ]
    api.post(f"/v1/project_logs/{project['id']}/insert", {"events": rows})
    return project["id"]


def equivalents(pid: str) -> list[tuple[dict[str, Any], str]]:
    frm = f"from: project_logs('{pid}') spans"
    logs = {**source("project_logs", pid), "shape": "spans"}
    return [
        (sdk_fetch_query("project_logs", pid), f"select: *\n{frm}\nlimit: 1000"),
        (
            sdk_fetch_query(
                "project_logs",
                pid,
                filter={"op": "and", "children": [cmp("eq", "root_span_id", "T0")]},
                sort=[{"expr": ident("created"), "dir": "asc"}],
            ),
            f"select: *\n{frm}\nfilter: root_span_id = 'T0'\nsort: created asc",
        ),
        (
            {
                "select": [{"alias": "row", "expr": ident("id")}, ident("span_id")],
                "from": logs,
                "filter": {
                    "op": "or",
                    "left": {"op": "not", "expr": cmp("lt", "created", "2026-01-03T00:00:00Z")},
                    "right": cmp("eq", "id", "a"),
                },
                "sort": [{"expr": ident("_pagination_key"), "dir": "desc"}],
                "limit": 2,
            },
            f"select: id as row, span_id\n{frm}\nfilter: not created < '2026-01-03T00:00:00Z' or id = 'a'\n"
            "sort: _pagination_key desc\nlimit: 2",
        ),
        (
            {
                "measures": [
                    {"alias": "n", "expr": {"op": "function", "name": ident("count"), "args": [lit(1)]}}
                ],
                "dimensions": [{"alias": "trace", "expr": ident("root_span_id")}],
                "from": logs,
                "filter": {"op": "isnotnull", "expr": ident("span_id")},
                "sort": [{"expr": ident("trace"), "dir": "asc"}],
            },
            f"measures: count(1) as n\ndimensions: root_span_id as trace\n{frm}\n"
            "filter: span_id is not null\nsort: trace asc",
        ),
    ]


@pytest.mark.parametrize("case", range(4))
def test_json_and_text_queries_return_the_same_rows(api: Api, logs: str, case: int) -> None:
    as_json, as_text = equivalents(logs)[case]
    text = post(api, as_text)
    assert text["data"], "the case must select something to compare"
    assert post(api, as_json) == text


def test_json_cursor_pages_like_text(api: Api, logs: str) -> None:
    """The SDK's paging loop: same query, ``cursor`` from the previous page, until a page is empty."""
    query = sdk_fetch_query("project_logs", logs, limit=3, sort=[{"expr": ident("created"), "dir": "asc"}])
    seen, cursor = [], None
    for _ in range(5):
        page = post(api, {**query, "cursor": cursor})
        if not page["data"]:
            break
        seen += [r["id"] for r in page["data"]]
        cursor = page["cursor"]
    assert seen == ["a", "b", "c", "d"]
    first = post(api, f"select: *\nfrom: project_logs('{logs}')\nsort: created asc\nlimit: 3")
    assert post(api, {**query, "cursor": None})["cursor"] == first["cursor"]


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"filter": {"op": "in", "left": ident("id"), "right": lit(["a"])}}, "'in'"),
        (
            {"filter": cmp("eq", "id", "a") | {"left": ident("metadata", "k")}},
            "nested field paths (metadata.k)",
        ),
        ({"filter": {"op": "eq", "left": ident("id"), "right": ident("span_id")}}, "two fields"),
        ({"filter": lit(False)}, "bare literal"),
        ({"filter": {"op": ["eq"]}}, "string op"),
        ({"from": {**source("project_logs", "p"), "shape": "traces"}}, "'traces' shape"),
        ({"from": source("project_prompts", "p")}, "project_prompts"),
        ({"unnest": [ident("tags")]}, "'unnest'"),
        ({"frobnicate": 1}, "unknown clause 'frobnicate'"),
        ({"select": [{"op": "star"}, ident("id")]}, "star cannot be combined"),
        ({"sort": [{"expr": ident("id")}, {"expr": ident("created")}]}, "several fields"),
        ({"limit": "10"}, "'limit'"),
        (
            {
                "select": None,
                "measures": [{"expr": {"op": "function", "name": ident("sum"), "args": [lit(1)]}}],
            },
            "sum",
        ),
    ],
)
def test_unsupported_json_is_a_400_naming_it(api: Api, logs: str, change: dict[str, Any], word: str) -> None:
    error = post(api, {**sdk_fetch_query("project_logs", logs), **change}, status=400)["error"]
    assert "parsed-query JSON" in error and word in error, error


# --- through the official SDK -------------------------------------------------------------------

SDK_SCRIPT = """
import json, os, braintrust
url, key = os.environ["RT_URL"], os.environ["RT_KEY"]
braintrust.login(app_url=url, api_key=key, force_login=True)
dataset = braintrust.init_dataset(project="json-q", name="d", api_key=key, app_url=url)
for i in range(6):
    dataset.insert(input={"q": i}, expected=i, id=f"row-{i}")
dataset.flush()
picked = braintrust.init_dataset(project="json-q", name="d", api_key=key, app_url=url, _internal_btql={
    "filter": {"op": "or", "children": [
        {"op": "eq", "left": {"op": "ident", "name": ["id"]}, "right": {"op": "literal", "value": f"row-{i}"}}
        for i in (1, 3, 4)]},
    "sort": [{"expr": {"op": "ident", "name": ["_pagination_key"]}, "dir": "asc"}]})
print(json.dumps([[r["id"], r["expected"]] for r in picked.fetch(batch_size=2)]))
"""


def test_sdk_init_dataset_with_internal_btql_fetches_through_json_btql(
    sandbox_server: SandboxServer, sandbox_org: SandboxOrg
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINTRUST_", "BT_"))}
    env.update(
        BRAINTRUST_SYNC_FLUSH="true",
        BRAINTRUST_NUM_RETRIES="0",
        BRAINTRUST_DISABLE_ATEXIT_FLUSH="true",
        RT_URL=sandbox_server.url,
        RT_KEY=sandbox_org.api_key,
    )
    done = subprocess.run(
        [sys.executable, "-c", SDK_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [["row-1", 1], ["row-3", 3], ["row-4", 4]]
