"""Every row arrives once, in its latest version, with ids, timestamps, trace structure,
content, comments and origins intact."""

from __future__ import annotations

import random

from tests.integration.engine.harness import migrate
from tests.integration.events.helpers import all_rows, client, comment_texts, comparable, feedback, insert


def build_source(url, org, rng: random.Random, traces: int = 40) -> dict[str, str]:
    with client(url, org) as c:
        project = c.post("/v1/project", json={"name": "Streams"}).json()
        dataset = c.post("/v1/dataset", json={"project_id": project["id"], "name": "golden"}).json()
    rows = []
    for t in range(traces):
        root = f"trace-{t}-root"
        rows.append(
            {
                "id": f"log-{t}-0",
                "span_id": root,
                "root_span_id": root,
                "created": f"2026-01-{1 + t % 28:02d}T10:00:00Z",
                "input": {"q": f"question {t} — ünïcødé ✓"},
                "output": f"answer {t}",
                "scores": {"accuracy": rng.random()},
                "metadata": {"model": "gpt", "n": t},
                "tags": ["prod"],
                "metrics": {"start": 1.0, "end": 2.5, "tokens": t},
                "span_attributes": {"name": "root", "type": "task"},
            }
        )
        for s in range(1, rng.randint(1, 5)):
            rows.append({"id": f"log-{t}-{s}", "span_id": f"trace-{t}-span-{s}", "root_span_id": root,
                         "span_parents": [root if s == 1 else f"trace-{t}-span-{s - 1}"], "input": [{"role": "user", "content": "hi"}],
                         "output": {"text": "x" * rng.randint(10, 400)}, "span_attributes": {"name": f"llm {s}", "type": "llm"},
                         "error": "timeout" if s == 3 else None})  # fmt: skip
    insert(url, org, "project_logs", project["id"], rows)
    data = [{"id": f"ds-{i}", "input": {"text": f"input {i}"}, "expected": f"label {i % 3}", "metadata": {"split": "test"},
             "created": "2026-02-01T00:00:00Z"} for i in range(30)]  # fmt: skip
    insert(url, org, "dataset", dataset["id"], data)
    insert(
        url,
        org,
        "dataset",
        dataset["id"],
        [{"id": f"ds-{i}", "input": {"text": f"updated {i}"}, "expected": "v2"} for i in range(5)],
    )
    insert(
        url,
        org,
        "dataset",
        dataset["id"],
        [{"id": f"ds-{i}", "_is_merge": True, "metadata": {"reviewed": True}} for i in range(5, 10)],
    )
    insert(
        url, org, "dataset", dataset["id"], [{"id": f"ds-{i}", "_object_delete": True} for i in range(27, 30)]
    )
    version = all_rows(url, org, "dataset", dataset["id"])["ds-9"]["_xact_id"]
    with client(url, org) as c:
        experiment = c.post(
            "/v1/experiment",
            json={
                "project_id": project["id"],
                "name": "run 1",
                "dataset_id": dataset["id"],
                "dataset_version": version,
            },
        ).json()
    exp_rows = [{"id": f"exp-{i}", "input": {"text": f"input {i}"}, "output": f"label {i % 3}", "expected": f"label {i % 3}",
                 "scores": {"exact": float(i % 2)}, "origin": {"object_type": "dataset", "object_id": dataset["id"], "id": f"ds-{i}"}}
                for i in range(20)]  # fmt: skip
    insert(url, org, "experiment", experiment["id"], exp_rows)
    feedback(
        url,
        org,
        "project_logs",
        project["id"],
        [{"id": "log-1-0", "comment": "looks wrong"}, {"id": "log-2-0", "comment": "great"}],
    )
    feedback(url, org, "dataset", dataset["id"], [{"id": "ds-3", "comment": "check label"}])
    feedback(url, org, "experiment", experiment["id"], [{"id": "exp-4", "comment": "regression?"}])
    return {"project": project["id"], "dataset": dataset["id"], "experiment": experiment["id"]}


def assert_same_rows(url, src, dst, kind, src_id, dst_id, offloaded=frozenset()) -> dict[str, dict]:
    """Same ids, same content; `offloaded` rows had fields moved to attachments (too large)."""
    source, dest = all_rows(url, src, kind, src_id), all_rows(url, dst, kind, dst_id)
    assert set(dest) == set(source), (
        f"{kind}: missing {set(source) - set(dest)} extra {set(dest) - set(source)}"
    )
    for row_id, row in source.items():
        assert comment_texts(dest[row_id]) == comment_texts(row), f"{kind} row {row_id} comments"
        if row_id in offloaded:
            continue
        assert comparable(dest[row_id]) == comparable(row), f"{kind} row {row_id}"
        assert comment_texts(dest[row_id]) == comment_texts(row), f"{kind} row {row_id} comments"
    return dest


async def test_rows_arrive_exactly(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    ids = build_source(url, src, random.Random(1))
    result = await migrate(url, src, dst, tmp_path)
    assert result.ok, result.summary_path.read_text()
    with client(url, dst) as c:
        project = c.get("/v1/project", params={"project_name": "Streams"}).json()["objects"][0]
        dataset = c.get("/v1/dataset", params={"project_id": project["id"]}).json()["objects"][0]
        experiment = c.get("/v1/experiment", params={"project_id": project["id"]}).json()["objects"][0]
    assert_same_rows(url, src, dst, "project_logs", ids["project"], project["id"])
    dest_ds = assert_same_rows(url, src, dst, "dataset", ids["dataset"], dataset["id"])
    assert "ds-28" not in dest_ds and dest_ds["ds-7"]["metadata"] == {"split": "test", "reviewed": True}
    dest_exp = assert_same_rows(url, src, dst, "experiment", ids["experiment"], experiment["id"])
    assert dest_exp["exp-3"]["origin"]["object_id"] == dataset["id"]
    assert dest_exp["exp-3"]["origin"]["id"] == "ds-3"
    # The experiment pins the destination transaction that holds the same dataset rows.
    pinned = experiment["dataset_version"]
    assert pinned and int(pinned) >= max(int(r["_xact_id"]) for r in dest_ds.values() if r["id"] != "ds-3")
    totals = result.report["events"]["totals"]
    assert totals["logs"]["rows_written"] == len(all_rows(url, src, "project_logs", ids["project"]))
    # 30 rows as of the pinned version (3 deleted since), then ds-3 again (commented since).
    assert totals["dataset_rows"]["rows_written"] == 31

    again = await migrate(url, src, dst, tmp_path)
    assert again.report["events"]["totals"]["logs"]["rows_written"] == 0  # resumed past everything
    assert_same_rows(url, src, dst, "dataset", ids["dataset"], dataset["id"])
