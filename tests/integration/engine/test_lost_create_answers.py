"""A create whose answer is lost is retried; the retry meets the object the first attempt made
("already exists"). That object is ours: the run adopts it instead of failing."""

from __future__ import annotations

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.cli_run import http
from tests.integration.engine.harness import migrate


async def test_environments_whose_create_answer_was_lost_are_adopted(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    slugs = [f"env-{i}" for i in range(6)]
    with http(url, src) as c:
        for slug in slugs:
            c.post("/environment", json={"name": slug.upper(), "slug": slug}).raise_for_status()
    sandbox_server.set_faults(
        FaultSettings(
            drop_rate=0.3, drop_phase="after", include_paths=("/environment",), methods=("POST",), seed=3
        ),
        org=dst.name,
    )

    result = await migrate(
        url, src, dst, tmp_path, migration_resources=["environments"], migration_max_concurrent_resources=1
    )
    lost = sandbox_server.fault_stats().drops_after
    sandbox_server.clear_faults()

    assert lost > 0, "no answer was lost: the case is not exercised"
    assert result.ok, result.summary_path.read_text()
    with http(url, dst) as c:
        listed = c.get("/environment").raise_for_status().json()
    items = listed["objects"] if isinstance(listed, dict) else listed
    assert sorted(e["slug"] for e in items) == slugs
