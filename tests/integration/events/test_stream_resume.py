"""`kill -9` while rows stream, then a plain re-run: exactly the source rows, no
duplicates, nothing lost."""

from __future__ import annotations

import random
import signal
import time

import pytest

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.test_resume_after_kill import run_cli
from tests.integration.events.helpers import all_rows, client, comparable, insert

ROWS = 12_000


def big_source(url, org) -> tuple[str, str]:
    with client(url, org) as c:
        project = c.post("/v1/project", json={"name": "Big"}).json()
        dataset = c.post("/v1/dataset", json={"project_id": project["id"], "name": "big"}).json()
    filler = "lorem ipsum " * 60
    for start in range(0, ROWS, 2000):
        rows = [{"id": f"row-{i}", "span_id": f"s{i}", "root_span_id": f"s{i - i % 4}",
                 "span_parents": [] if i % 4 == 0 else [f"s{i - i % 4}"], "input": {"i": i, "text": filler},
                 "output": {"ok": i % 7 != 0}, "metadata": {"bucket": i % 13}} for i in range(start, start + 2000)]  # fmt: skip
        for row in rows:
            if not row["span_parents"]:
                del row["span_parents"]
        insert(url, org, "project_logs", project["id"], rows)
    insert(
        url,
        org,
        "dataset",
        dataset["id"],
        [{"id": f"d-{i}", "input": i, "expected": i * 2} for i in range(3000)],
    )
    return project["id"], dataset["id"]


@pytest.mark.parametrize("seed_value", [11, 12, 13])
async def test_kill_during_streaming_then_resume(sandbox_server, sandbox_orgs, tmp_path, seed_value):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    project_id, dataset_id = big_source(url, src)
    # Slow the destination down a little so that kills land mid-stream.
    sandbox_server.set_faults(FaultSettings(latency_ms=60), org=dst.name)
    rng = random.Random(seed_value)
    kills = 0
    for _ in range(3):
        proc = run_cli(url, src, dst, tmp_path, "--page-size", "500", "--insert-batch-rows", "100")
        time.sleep(rng.uniform(0.8, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 1, "the migration finished before any kill: nothing was tested"
    sandbox_server.set_faults(None, org=dst.name)
    final = run_cli(url, src, dst, tmp_path)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()[-3000:]

    with client(url, dst) as c:
        dest_project = c.get("/v1/project", params={"project_name": "Big"}).json()["objects"][0]
        dest_dataset = c.get("/v1/dataset", params={"project_id": dest_project["id"]}).json()["objects"][0]
    for kind, src_id, dst_id in (
        ("project_logs", project_id, dest_project["id"]),
        ("dataset", dataset_id, dest_dataset["id"]),
    ):
        source, dest = (
            all_rows(url, src, kind, src_id),
            all_rows(url, dst, kind, dst_id),
        )  # all_rows asserts no duplicates
        assert set(dest) == set(source)
        assert all(comparable(dest[i]) == comparable(row) for i, row in source.items())
