"""Event stores over HTTP: insert / merge / delete, fetch paging and versions, feedback, summarize.

Every 200 response is checked against the spec by :class:`Api` (``InsertEventsResponse``,
``Fetch*EventsResponse`` with ``ProjectLogsEvent`` / ``ExperimentEvent`` / ``DatasetEvent``...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from braintrust_migrate.sandbox.core import spec
from braintrust_migrate.sandbox.server import SandboxServer
from tests.integration.sandbox.helpers import Api


@pytest.fixture
def experiment(api: Api, project: dict) -> dict:
    return api.post("/v1/experiment", {"project_id": project["id"], "name": "exp"})


@pytest.fixture
def dataset(api: Api, project: dict) -> dict:
    return api.post("/v1/dataset", {"project_id": project["id"], "name": "ds"})


def logs(project: dict) -> str:
    return f"/v1/project_logs/{project['id']}"


def insert(api: Api, base: str, *events: dict[str, Any]) -> list[str]:
    return api.post(f"{base}/insert", {"events": list(events)})["row_ids"]


def fetch(api: Api, base: str, **body: Any) -> dict[str, Any]:
    return api.post(f"{base}/fetch", body)


def rows_by_id(api: Api, base: str) -> dict[str, dict[str, Any]]:
    """The latest version of every row, de-duplicated the way the spec tells clients to."""
    out: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        page = fetch(api, base, limit=100, **({"cursor": cursor} if cursor else {}))
        for row in page["events"]:
            if row["id"] not in out or int(row["_xact_id"]) > int(out[row["id"]]["_xact_id"]):
                out[row["id"]] = row
        cursor = page.get("cursor")
        if not cursor:
            return out


# --- insert ---------------------------------------------------------------------------------------


def test_insert_keeps_client_fields_and_generates_the_rest(api: Api, project: dict) -> None:
    base = logs(project)
    origin = {"object_type": "experiment", "object_id": project["id"], "id": "src-1", "_xact_id": "123"}
    given = {
        "id": "r1",
        "created": "2025-02-03T04:05:06.789+01:00",
        "span_id": "s1",
        "root_span_id": "root",
        "span_parents": ["root-span"],
        "origin": origin,
        "input": {"q": 1},
        "scores": {"acc": 0.25},
        "metadata": {"model": "m"},
    }
    ids = insert(api, base, given, {"input": "bare"})
    assert ids[0] == "r1" and ids[1] != "r1"
    rows = rows_by_id(api, base)
    r1, bare = rows["r1"], rows[ids[1]]
    assert r1["created"] == "2025-02-03T03:05:06.789Z"  # same instant, normalised to UTC
    assert (r1["span_id"], r1["root_span_id"], r1["span_parents"]) == ("s1", "root", ["root-span"])
    assert r1["is_root"] is False and r1["origin"] == origin
    assert (r1["org_id"], r1["project_id"], r1["log_id"]) == (project["org_id"], project["id"], "g")
    assert bare["root_span_id"] == bare["span_id"] and bare["is_root"] is True
    assert bare["span_parents"] is None and bare["output"] is None and bare["created"].endswith("Z")
    assert r1["_xact_id"] == bare["_xact_id"]  # one request, one transaction
    assert r1["_pagination_key"] < bare["_pagination_key"]


def test_inserts_are_validated_against_the_container_schema(api: Api, project: dict, dataset: dict) -> None:
    base = logs(project)
    cases = [
        (f"/v1/dataset/{dataset['id']}", {"output": 1}, "events[0].output"),
        (f"/v1/dataset/{dataset['id']}", {"scores": {"a": 1}}, "events[0].scores"),
        (f"/v1/dataset/{dataset['id']}", {"span_attributes": {"name": "x"}}, "events[0].span_attributes"),
        (base, {"nonsense": 1}, "events[0].nonsense"),
        (base, {"scores": {"a": 1.5}}, "events[0].scores.a"),
        (base, {"scores": {"a": True}}, "events[0].scores.a"),
        (base, {"created": "2025-01-01"}, "events[0].created"),
        (base, {"tags": ["a", 2]}, "events[0].tags[1]"),
        (base, {"metrics": {"tokens": 1.5}}, "events[0].metrics.tokens"),
        (base, {"span_attributes": {"type": "nope"}}, "events[0].span_attributes.type"),
        (base, {"origin": {"object_type": "experiment", "id": "x"}}, "events[0].origin"),
        (base, {"_array_delete": [{"path": ["tags"]}]}, "events[0]._array_delete[0]"),
    ]
    for path, event, field in cases:
        message = api.fails(400, "POST", f"{path}/insert", json={"events": [{"id": "ok"}, event]})
        assert field.replace("[0]", "[1]", 1) in message, (event, message)
    assert "events" in api.fails(400, "POST", f"{base}/insert", json={"rows": []})
    assert rows_by_id(api, base) == {}  # a failed request writes nothing


def test_replace_is_the_default_and_keeps_nothing(api: Api, project: dict) -> None:
    base = logs(project)
    insert(api, base, {"id": "foo", "input": {"a": 5, "b": 10}, "tags": ["x"]})
    insert(api, base, {"id": "foo", "input": {"b": 11, "c": 20}})
    row = rows_by_id(api, base)["foo"]
    assert row["input"] == {"b": 11, "c": 20} and row["tags"] is None


def test_merge_examples_of_the_spec(api: Api, project: dict) -> None:
    base = logs(project)
    insert(api, base, {"id": "foo", "input": {"a": 5, "b": 10}})
    insert(api, base, {"_is_merge": True, "id": "foo", "input": {"b": 11, "c": 20}})
    assert rows_by_id(api, base)["foo"]["input"] == {"a": 5, "b": 11, "c": 20}

    insert(api, base, {"id": "bar", "input": {"a": {"b": 10}, "c": {"d": 20}}, "output": {"a": 20}})
    insert(
        api,
        base,
        {
            "_is_merge": True,
            "_merge_paths": [["input", "a"], ["output"]],
            "id": "bar",
            "input": {"a": {"q": 30}, "c": {"e": 30}, "bar": "baz"},
            "output": {"d": 40},
        },
    )
    row = rows_by_id(api, base)["bar"]
    assert row["input"] == {"a": {"q": 30}, "c": {"d": 20, "e": 30}, "bar": "baz"}
    assert row["output"] == {"d": 40}


def test_merge_ignores_span_fields_and_inserts_when_absent(api: Api, project: dict) -> None:
    base = logs(project)
    insert(api, base, {"id": "a", "span_id": "s", "root_span_id": "r", "metadata": {"k": 1, "keep": True}})
    insert(
        api,
        base,
        {
            "_is_merge": True,
            "id": "a",
            "span_id": "other",
            "root_span_id": "other",
            "span_parents": ["p"],
            "metadata": {"k": 2},
            "output": None,
            "scores": {"s": 1},
        },
    )
    insert(api, base, {"_is_merge": True, "id": "fresh", "input": 1})
    rows = rows_by_id(api, base)
    a = rows["a"]
    assert (a["span_id"], a["root_span_id"], a["span_parents"], a["is_root"]) == ("s", "r", None, True)
    assert a["metadata"] == {"k": 2, "keep": True} and a["scores"] == {"s": 1}
    assert rows["fresh"]["input"] == 1 and rows["fresh"]["span_id"] == rows["fresh"]["root_span_id"]


def test_array_delete_removes_values(api: Api, project: dict) -> None:
    base = logs(project)
    insert(
        api, base, {"id": "t", "tags": ["foo", "bar", "baz"], "metadata": {"categories": ["x", {"y": 1}, 2]}}
    )
    insert(
        api,
        base,
        {
            "_is_merge": True,
            "id": "t",
            "_array_delete": [
                {"path": ["tags"], "delete": ["foo", "bar"]},
                {"path": ["metadata", "categories"], "delete": [{"y": 1}, "nope"]},
            ],
        },
    )
    row = rows_by_id(api, base)["t"]
    assert row["tags"] == ["baz"] and row["metadata"] == {"categories": ["x", 2]}


def test_several_events_for_one_id_in_one_request_make_one_version(api: Api, project: dict) -> None:
    base = logs(project)
    ids = insert(api, base, {"id": "x", "input": 1}, {"id": "x", "_is_merge": True, "output": 2})
    assert ids == ["x", "x"]
    page = fetch(api, base)
    assert [(r["id"], r["input"], r["output"]) for r in page["events"]] == [("x", 1, 2)]


def test_parent_id_makes_a_subspan(api: Api, project: dict) -> None:
    base = logs(project)
    insert(api, base, {"id": "abc", "input": "foo"})
    insert(api, base, {"_parent_id": "abc", "id": "llm_call", "metrics": {"tokens": 1}})
    rows = rows_by_id(api, base)
    assert rows["llm_call"]["root_span_id"] == rows["abc"]["root_span_id"]
    assert rows["llm_call"]["span_parents"] == [rows["abc"]["span_id"]]
    assert rows["llm_call"]["is_root"] is False
    assert "_parent_id" in api.fails(400, "POST", f"{base}/insert", json={"events": [{"_parent_id": "nope"}]})


def test_object_delete_hides_every_version(api: Api, project: dict) -> None:
    base = logs(project)
    insert(api, base, {"id": "d", "input": 1})
    insert(api, base, {"id": "d", "input": 2})
    insert(api, base, {"id": "keep"})
    insert(api, base, {"id": "d", "_object_delete": True})
    assert set(rows_by_id(api, base)) == {"keep"}
    insert(api, base, {"id": "d", "input": 3})  # inserting the id again brings it back
    assert rows_by_id(api, base)["d"]["input"] == 3


def test_xact_ids_and_pagination_keys_grow_with_every_write(api: Api, project: dict) -> None:
    base = logs(project)
    seen = []
    for i in range(4):
        insert(api, base, {"id": f"r{i}"}, {"id": "same"})
        events = fetch(api, base)["events"]
        newest = [r for r in events if r["_xact_id"] == events[0]["_xact_id"]]
        assert {r["id"] for r in newest} == {f"r{i}", "same"}
        seen.append((newest[0]["_xact_id"], sorted(r["_pagination_key"] for r in newest)))
    xacts = [int(x) for x, _ in seen]
    keys = [k for _, ks in seen for k in ks]
    assert xacts == sorted(set(xacts)) and all(len(x) == 19 for x, _ in seen)
    assert keys == sorted(set(keys))


def test_events_live_in_their_own_container(api: Api, project: dict, experiment: dict, dataset: dict) -> None:
    exp_base, ds_base = f"/v1/experiment/{experiment['id']}", f"/v1/dataset/{dataset['id']}"
    insert(api, exp_base, {"id": "same", "output": "exp", "span_parents": ["p"], "root_span_id": "r"})
    insert(api, ds_base, {"id": "same", "expected": "ds", "span_parents": ["p"], "root_span_id": "r"})
    insert(api, logs(project), {"id": "same", "output": "log"})
    exp_row = rows_by_id(api, exp_base)["same"]
    ds_row = rows_by_id(api, ds_base)["same"]
    assert exp_row["experiment_id"] == experiment["id"] and exp_row["project_id"] == project["id"]
    assert exp_row["output"] == "exp" and exp_row["span_parents"] == ["p"] and exp_row["is_root"] is False
    assert ds_row["expected"] == "ds" and ds_row["dataset_id"] == dataset["id"]
    assert "span_parents" not in ds_row and "output" not in ds_row  # DatasetEvent has neither
    assert ds_row["is_root"] is False
    assert set(ds_row) == set(spec.schema_properties("DatasetEvent"))


def test_unknown_or_foreign_containers_are_404(
    api: Api, project: dict, make_api: Callable[[str | None], Api], sandbox_server: SandboxServer
) -> None:
    other = make_api(sandbox_server.create_org("events-other").api_key)
    insert(api, logs(project), {"id": "mine"})
    for method, suffix, body in (
        ("POST", "insert", {"events": [{}]}),
        ("POST", "fetch", {}),
        ("GET", "fetch", None),
    ):
        kwargs = {"json": body} if body is not None else {}
        other.fails(404, method, f"{logs(project)}/{suffix}", **kwargs)
    other.fails(
        404, "POST", "/v1/experiment/00000000-0000-4000-8000-000000000000/insert", json={"events": []}
    )
    api.fails(400, "POST", "/v1/experiment/not-a-uuid/insert", json={"events": []})
    assert set(rows_by_id(api, logs(project))) == {"mine"}


# --- fetch --------------------------------------------------------------------------------------


def test_fetch_pages_newest_first_by_traces(api: Api, project: dict) -> None:
    base = logs(project)
    insert(
        api,
        base,
        {"id": "a0", "span_id": "a0", "root_span_id": "A"},
        {"id": "a1", "span_id": "a1", "root_span_id": "A", "span_parents": ["a0"]},
        {"id": "a2", "span_id": "a2", "root_span_id": "A", "span_parents": ["a0"]},
    )
    insert(api, base, {"id": "b0", "span_id": "b0", "root_span_id": "B"})
    insert(
        api,
        base,
        {"id": "c0", "span_id": "c0", "root_span_id": "C"},
        {"id": "c1", "span_id": "c1", "root_span_id": "C", "span_parents": ["c0"]},
    )
    pages, cursor = [], None
    while True:
        page = fetch(api, base, limit=1, **({"cursor": cursor} if cursor else {}))
        if not page["events"]:
            assert "cursor" not in page  # "Not provided if the returned result set is empty"
            break
        pages.append(sorted(r["id"] for r in page["events"]))
        cursor = page["cursor"]
    assert pages == [["c0", "c1"], ["b0"], ["a0", "a1", "a2"]]  # limit counts traces, not rows
    two = fetch(api, base, limit=2)
    assert [r["root_span_id"] for r in two["events"]] == ["C", "C", "B"]
    got = api.get(f"{base}/fetch", limit=1)
    assert sorted(r["id"] for r in got["events"]) == ["c0", "c1"]
    again = api.get(f"{base}/fetch", limit=1, cursor=got["cursor"])  # GET has no cursor: ignored
    assert again["events"] == got["events"]
    assert len(api.get(f"{base}/fetch")["events"]) == 6  # no limit: everything


def test_later_pages_never_return_superseded_versions(api: Api, project: dict) -> None:
    base = logs(project)
    insert(api, base, {"id": "x", "input": "v1", "root_span_id": "X"})
    insert(api, base, {"id": "y", "input": "y", "root_span_id": "Y"})
    insert(api, base, {"id": "x", "input": "v2", "root_span_id": "X"})
    seen, cursor = [], None
    while True:
        page = fetch(api, base, limit=1, **({"cursor": cursor} if cursor else {}))
        if not page["events"]:
            break
        seen += [(r["id"], r["input"], int(r["_xact_id"])) for r in page["events"]]
        cursor = page["cursor"]
    assert [(i, v) for i, v, _ in seen] == [("x", "v2"), ("y", "y")]  # live rows only, like the hosted API
    assert [x for _, _, x in seen] == sorted((x for _, _, x in seen), reverse=True)
    assert rows_by_id(api, base)["x"]["input"] == "v2"  # de-duplicating by id keeps the latest


def test_fetch_version_is_a_snapshot(api: Api, project: dict) -> None:
    base = logs(project)
    insert(api, base, {"id": "x", "input": "v1"}, {"id": "gone", "input": 1})
    v1 = fetch(api, base)["events"][0]["_xact_id"]
    insert(api, base, {"id": "x", "input": "v2"}, {"id": "new"})
    insert(api, base, {"id": "gone", "_object_delete": True})
    then = fetch(api, base, version=v1)["events"]
    assert sorted((r["id"], r["input"]) for r in then) == [("gone", 1), ("x", "v1")]
    got = api.get(f"{base}/fetch", version=v1)["events"]
    assert sorted(r["id"] for r in got) == ["gone", "x"]
    now = rows_by_id(api, base)
    assert sorted(now) == ["new", "x"] and now["x"]["input"] == "v2"
    assert "version" in api.fails(400, "POST", f"{base}/fetch", json={"version": "latest"})


def test_deprecated_max_xact_cursor(api: Api, project: dict) -> None:
    base = logs(project)
    insert(api, base, {"id": "a", "root_span_id": "A"})
    insert(api, base, {"id": "b", "root_span_id": "B"})
    first = fetch(api, base, limit=1)["events"]
    low = min((r["_xact_id"], r["root_span_id"]) for r in first)
    rest = fetch(api, base, limit=1, max_xact_id=low[0], max_root_span_id=low[1])["events"]
    assert [r["id"] for r in first] == ["b"] and [r["id"] for r in rest] == ["a"]
    api.fails(400, "POST", f"{base}/fetch", json={"max_xact_id": low[0]})
    api.fails(400, "POST", f"{base}/fetch", json={"cursor": "garbage!"})


def test_reads_are_not_counted_as_writes(api: Api, project: dict, sandbox_server: SandboxServer) -> None:
    base = logs(project)
    key = api.client.headers["Authorization"].split()[1]
    insert(api, base, {"id": "a"})
    before = sandbox_server.write_count(key)
    fetch(api, base, limit=10)
    api.client.post("/btql", json={"query": f"select: * | from: project_logs('{project['id']}')"})
    assert sandbox_server.write_count(key) == before
    insert(api, base, {"id": "b"})
    assert sandbox_server.write_count(key) == before + 1


# --- feedback -----------------------------------------------------------------------------------


def test_feedback_merges_scores_and_records_comments_and_audit(api: Api, experiment: dict) -> None:
    base = f"/v1/experiment/{experiment['id']}"
    insert(api, base, {"id": "r", "scores": {"a": 0.5, "b": 1}, "metadata": {"m": 1}, "tags": ["t"]})
    before = rows_by_id(api, base)["r"]
    result = api.post(
        f"{base}/feedback",
        {
            "feedback": [
                {
                    "id": "r",
                    "scores": {"a": 0.75, "c": 0},
                    "expected": {"e": 1},
                    "tags": ["u"],
                    "comment": "looks wrong",
                    "metadata": {"reviewer": "bob"},
                    "source": "app",
                }
            ]
        },
    )
    assert result == {"status": "success"}
    row = rows_by_id(api, base)["r"]
    assert row["scores"] == {"a": 0.75, "b": 1, "c": 0}
    assert row["expected"] == {"e": 1} and row["tags"] == ["u"] and row["metadata"] == {"m": 1}
    assert int(row["_xact_id"]) > int(before["_xact_id"])
    assert row["_pagination_key"] > before["_pagination_key"]
    [comment] = row["comments"]
    assert comment["comment"] == {"text": "looks wrong"} and comment["source"] == "app"
    assert comment["metadata"] == {"reviewer": "bob"} and comment["user_id"] and comment["created"]
    [audit] = row["audit_data"]
    assert audit["_xact_id"] == row["_xact_id"] and audit["metadata"] == {"reviewer": "bob"}
    assert audit["source"] == "app" and audit["audit_data"]["action"] == "feedback"
    changes = {tuple(c["path"]): (c["from"], c["to"]) for c in audit["audit_data"]["changes"]}
    assert changes == {
        ("scores", "a"): (0.5, 0.75),
        ("scores", "c"): (None, 0),
        ("expected",): (None, {"e": 1}),
        ("tags",): (["t"], ["u"]),
    }
    api.post(f"{base}/feedback", {"feedback": [{"id": "r", "comment": "second"}]})
    row = rows_by_id(api, base)["r"]
    assert [c["comment"]["text"] for c in row["comments"]] == ["looks wrong", "second"]
    assert len(row["audit_data"]) == 2 and row["audit_data"][1]["source"] == "external"
    insert(api, base, {"id": "r", "input": "replaced"})  # comments hang off the id, not the content
    assert len(rows_by_id(api, base)["r"]["comments"]) == 2


def test_feedback_errors(api: Api, dataset: dict, project: dict) -> None:
    ds = f"/v1/dataset/{dataset['id']}"
    insert(api, ds, {"id": "r"})
    assert "feedback[0].scores" in api.fails(
        400, "POST", f"{ds}/feedback", json={"feedback": [{"id": "r", "scores": {"a": 1}}]}
    )
    assert "feedback[0].id" in api.fails(
        400, "POST", f"{ds}/feedback", json={"feedback": [{"id": "nope", "comment": "x"}]}
    )
    api.post(f"{ds}/feedback", {"feedback": [{"id": "r", "tags": ["ok"], "comment": "fine"}]})
    row = rows_by_id(api, ds)["r"]
    assert row["tags"] == ["ok"] and row["comments"][0]["comment"]["text"] == "fine"
    api.fails(400, "POST", f"{logs(project)}/feedback", json={"feedback": [{"scores": {}}]})  # id required


# --- cross-object insert ------------------------------------------------------------------------


def test_cross_object_insert(api: Api, project: dict, experiment: dict, dataset: dict) -> None:
    insert(api, logs(project), {"id": "old", "scores": {"s": 0}})
    result = api.post(
        "/v1/insert",
        {
            "experiment": {experiment["id"]: {"events": [{"id": "e1", "output": 1}, {"output": 2}]}},
            "dataset": {dataset["id"]: {"events": [{"id": "d1", "expected": 3}]}},
            "project_logs": {project["id"]: {"feedback": [{"id": "old", "scores": {"s": 1}}]}},
        },
    )
    assert result["experiment"][experiment["id"]]["row_ids"][0] == "e1"
    assert len(result["experiment"][experiment["id"]]["row_ids"]) == 2
    assert result["dataset"] == {dataset["id"]: {"row_ids": ["d1"]}}
    assert result["project_logs"] == {project["id"]: {"row_ids": []}}
    e1 = rows_by_id(api, f"/v1/experiment/{experiment['id']}")["e1"]
    d1 = rows_by_id(api, f"/v1/dataset/{dataset['id']}")["d1"]
    old = rows_by_id(api, logs(project))["old"]
    assert e1["_xact_id"] == d1["_xact_id"] == old["_xact_id"]  # one transaction
    assert old["scores"] == {"s": 1}
    message = api.fails(
        400, "POST", "/v1/insert", json={"dataset": {dataset["id"]: {"events": [{"output": 1}]}}}
    )
    assert f"dataset.{dataset['id']}.events[0].output" in message


def test_cross_object_insert_needs_a_key(sandbox_server: SandboxServer) -> None:
    Api(sandbox_server.url, None).fails(401, "POST", "/v1/insert", json={})


# --- summarize ----------------------------------------------------------------------------------


def test_summarize_dataset(api: Api, dataset: dict, project: dict) -> None:
    ds = f"/v1/dataset/{dataset['id']}"
    insert(api, ds, {"id": "a"}, {"id": "b"}, {"id": "c"})
    insert(api, ds, {"id": "a", "input": 2}, {"id": "c", "_object_delete": True})
    summary = api.get(f"{ds}/summarize", summarize_data="true")
    assert summary["data_summary"] == {"total_records": 2}
    assert summary["dataset_name"] == "ds" and summary["project_name"] == project["name"]
    assert summary["dataset_url"].startswith(summary["project_url"])
    assert "data_summary" not in api.get(f"{ds}/summarize")


def test_summarize_experiment_compares_with_the_previous_one(api: Api, project: dict) -> None:
    first = api.post("/v1/experiment", {"project_id": project["id"], "name": "base"})
    second = api.post("/v1/experiment", {"project_id": project["id"], "name": "next"})
    for exp, values in ((first, (0.5, 0.5)), (second, (1.0, 0.0))):
        insert(
            api,
            f"/v1/experiment/{exp['id']}",
            *(
                {"input": i, "scores": {"acc": v}, "metrics": {"start": 0, "end": 2 * (i + 1), "tokens": 10}}
                for i, v in enumerate(values)
            ),
        )
    summary = api.get(f"/v1/experiment/{second['id']}/summarize", summarize_scores="true")
    assert summary["comparison_experiment_name"] == "base"
    acc = summary["scores"]["acc"]
    assert (acc["score"], acc["diff"], acc["improvements"], acc["regressions"]) == (0.5, 0.0, 1, 1)
    assert summary["metrics"]["duration"]["metric"] == 3.0 and summary["metrics"]["duration"]["unit"] == "s"
    assert summary["metrics"]["tokens"]["unit"] == "tok"
    plain = api.get(f"/v1/experiment/{first['id']}/summarize")
    assert set(plain) == {"project_name", "experiment_name", "project_url", "experiment_url"}
    alone = api.get(f"/v1/experiment/{first['id']}/summarize", summarize_scores="true")
    assert "comparison_experiment_name" not in alone and alone["scores"]["acc"]["improvements"] == 0
    explicit = api.get(
        f"/v1/experiment/{first['id']}/summarize",
        summarize_scores="true",
        comparison_experiment_id=second["id"],
    )
    assert explicit["comparison_experiment_name"] == "next"
