"""Objects and rows overlap: a container's rows stream as soon as its destination container
exists (and the objects its rows' origins name), not after every object of the org.

Project "fast" holds an experiment whose rows name a dataset of project "slow" as their origin;
project "slow" also holds a prompt whose write is held until the destination (read by plain BTQL)
holds the experiment's rows. On the old order (rows after every object) the rows never arrive
while the prompt is held; now they do. The dataset's write is delayed too: rows naming it must
wait for it, or their origin would be lost (the oracle compares origins)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from braintrust_migrate.btql import Query
from braintrust_migrate.engine import walk
from tests.integration.engine.harness import migrate
from tests.oracle import compare_orgs

ROWS = 30
HOLD_LIMIT_S = 20.0  # a guard against a hang only: the old order waits this out, then fails


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _seed(url: str, key: str) -> None:
    with _client(url, key) as c:
        fast = c.post("/v1/project", json={"name": "fast"}).raise_for_status().json()
        slow = c.post("/v1/project", json={"name": "slow"}).raise_for_status().json()
        dataset = c.post("/v1/dataset", json={"name": "golden", "project_id": slow["id"]}).raise_for_status()
        ds_id = dataset.json()["id"]
        ds_rows = [{"id": f"d{i}", "input": {"q": i}, "expected": i} for i in range(ROWS)]
        c.post(f"/v1/dataset/{ds_id}/insert", json={"events": ds_rows}).raise_for_status()
        c.post(
            "/v1/prompt",
            json={
                "project_id": slow["id"],
                "name": "held",
                "slug": "held",
                "prompt_data": {"prompt": {"type": "chat", "messages": [{"role": "user", "content": "hi"}]}},
            },
        ).raise_for_status()
        exp = c.post("/v1/experiment", json={"name": "eval", "project_id": fast["id"]}).raise_for_status()
        rows = [
            {
                "id": f"e{i}",
                "input": {"q": i},
                "output": i,
                "scores": {"ok": 1},
                "origin": {"object_type": "dataset", "object_id": ds_id, "id": f"d{i}"},
            }
            for i in range(ROWS)
        ]
        c.post(f"/v1/experiment/{exp.json()['id']}/insert", json={"events": rows}).raise_for_status()


def _dest_experiment_rows(url: str, key: str) -> int:
    """Rows the destination's experiment "eval" holds now, by plain BTQL (0 before it exists)."""
    with _client(url, key) as c:
        found = [
            e for e in c.get("/v1/experiment").raise_for_status().json()["objects"] if e["name"] == "eval"
        ]
        if not found:
            return 0
        query = Query("experiment", [found[0]["id"]], select=["id"], limit=1000)
        return len(c.post("/btql", json=query.body()).raise_for_status().json()["data"])


async def test_rows_stream_while_another_projects_objects_are_written(
    sandbox_server: Any, sandbox_orgs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    _seed(url, src.api_key)
    real = walk.migrate_node
    seen_while_held: list[int] = []
    order: list[str] = []

    async def held(ctx: Any, node: Any, **kw: Any) -> Any:
        if node.rt.kind == "prompt" and not kw.get("final"):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + HOLD_LIMIT_S
            rows = 0
            while loop.time() < deadline:
                rows = await asyncio.to_thread(_dest_experiment_rows, url, dst.api_key)
                if rows >= ROWS:
                    break
                await asyncio.sleep(0.05)
            seen_while_held.append(rows)
        elif node.rt.kind == "dataset" and not kw.get("final"):
            await asyncio.sleep(0.3)  # the experiment's rows are ready first: their origins must wait
        outcome = await real(ctx, node, **kw)
        order.append(node.rt.kind)
        return outcome

    monkeypatch.setattr(walk, "migrate_node", held)
    result = await migrate(url, src, dst, tmp_path, migration_overlap_rows=True)
    assert result.ok, result.summary_path.read_text()
    # Every row of the experiment was in the destination before the prompt was written.
    assert seen_while_held == [ROWS], seen_while_held
    assert order.index("dataset") < order.index("prompt")
    compare_orgs(url, src.api_key, dst.api_key).assert_equal()
