"""Under injected faults on both sides (8% 5xx, 429 bursts, a lowered 413 limit, dropped
connections before and after the write): exactly the same result as without."""

from __future__ import annotations

import random

import httpx
import orjson

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.harness import migrate
from tests.integration.events.helpers import client, insert
from tests.integration.events.test_stream_fidelity import assert_same_rows, build_source
from tests.oracle import compare_orgs

FAULTS = FaultSettings(
    error_rate=0.08,
    max_concurrent_per_key=3,
    retry_after_seconds=0,
    drop_rate=0.05,
    drop_phase="random",
    seed=7,
    exclude_paths=("/_sandbox",),
)


async def test_exact_result_under_faults(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    ids = build_source(url, src, random.Random(3), traces=120)
    big = {"id": "huge-row", "input": {"blob": "z" * 200_000}, "output": {"blob": "y" * 150_000}}
    insert(url, src, "project_logs", ids["project"], [big])
    sandbox_server.set_faults(FAULTS, org=src.name)
    sandbox_server.set_faults(
        FaultSettings(**{**FAULTS.__dict__, "max_request_bytes": 128 * 1024, "seed": 8}), org=dst.name
    )
    try:
        result = await migrate(
            url, src, dst, tmp_path, migration_retry_attempts=12, migration_insert_batch_rows=200
        )
    finally:
        injected = sandbox_server.fault_stats(dst.name), sandbox_server.fault_stats(src.name)
        sandbox_server.clear_faults()
    assert result.ok, result.summary_path.read_text()
    # Every kind of fault really happened (counted on both sides together).
    assert injected[0].too_large > 0
    assert sum(i.server_errors for i in injected) > 0
    assert sum(i.rate_limited for i in injected) > 0
    assert sum(i.drops for i in injected) > 0
    with client(url, dst) as c:
        project = c.get("/v1/project", params={"project_name": "Streams"}).json()["objects"][0]
        dataset = c.get("/v1/dataset", params={"project_id": project["id"]}).json()["objects"][0]
        experiment = c.get("/v1/experiment", params={"project_id": project["id"]}).json()["objects"][0]
    logs = assert_same_rows(
        url, src, dst, "project_logs", ids["project"], project["id"], offloaded={"huge-row"}
    )
    ref = logs["huge-row"]["input"]
    assert ref["type"] == "braintrust_attachment"
    with client(url, dst) as c:
        params = {
            "key": ref["key"],
            "filename": ref["filename"],
            "content_type": ref["content_type"],
            "org_id": dst.id,
        }
        location = c.get("/attachment", params=params).raise_for_status().json()["downloadUrl"]
        assert orjson.loads(httpx.get(location).raise_for_status().content) == big["input"]
    assert_same_rows(url, src, dst, "dataset", ids["dataset"], dataset["id"])
    assert_same_rows(url, src, dst, "experiment", ids["experiment"], experiment["id"])
    compare_orgs(url, src.api_key, dst.api_key).assert_equal()  # the independent oracle, whole org
