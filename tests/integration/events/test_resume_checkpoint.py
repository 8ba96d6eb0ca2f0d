"""A stream interrupted (SIGINT or SIGKILL) resumes from the rows the destination had
acknowledged: they are neither read from the source nor written again; and paging that
does not advance is an error, never an endless loop."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from typing import Any

import orjson
import pytest

from braintrust_migrate.client import ApiError
from braintrust_migrate.sandbox.faults import FaultSettings
from braintrust_migrate.source.reader import BtqlReader, FetchReader
from tests.integration.engine.harness import migrate
from tests.integration.engine.test_resume_after_kill import run_cli
from tests.integration.events.helpers import all_rows, client, comparable, insert

ROWS, BATCH = 3000, 100
IN_FLIGHT = 4 * BATCH  # inserts a stream has in flight: sent, maybe landed, not acknowledged


def dest_count(url, org) -> tuple[str | None, int]:
    with client(url, org) as c:
        projects = c.get("/v1/project", params={"project_name": "Resume"}).json()["objects"]
        if not projects:
            return None, 0
        query = f"measures: count(1) as n\nfrom: project_logs('{projects[0]['id']}') spans"
        data = c.post("/btql", json={"query": query, "fmt": "json"}).json().get("data") or [{}]
        return projects[0]["id"], int(data[0].get("n") or 0)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
async def test_resume_reads_no_acknowledged_row_again(sandbox_server, sandbox_orgs, tmp_path, sig):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src) as c:
        project = c.post("/v1/project", json={"name": "Resume"}).json()["id"]
    insert(url, src, "project_logs", project, [{"id": f"r{i:05d}", "input": {"i": i}} for i in range(ROWS)])
    # Slow inserts so that the interrupt lands mid-stream.
    sandbox_server.set_faults(
        FaultSettings(latency_ms=120, include_paths=("/v1/project_logs",)), org=dst.name
    )
    proc = run_cli(url, src, dst, tmp_path, "--page-size", str(BATCH), "--insert-batch-rows", str(BATCH))
    try:
        while proc.poll() is None and dest_count(url, dst)[1] < ROWS // 3:
            time.sleep(0.02)
        assert proc.poll() is None, "the migration finished before the interrupt: nothing was tested"
        proc.send_signal(sig)
        proc.communicate(timeout=60)  # an interrupted run exits (it used to hang on a full page queue)
    finally:
        if proc.poll() is None:
            proc.kill()
    sandbox_server.clear_faults()
    dest_id, landed = dest_count(url, dst)
    assert dest_id and landed >= ROWS // 3
    before = {i: row["_xact_id"] for i, row in all_rows(url, dst, "project_logs", dest_id).items()}

    # Count what the source serves to the resumed run (fault settings that inject nothing).
    sandbox_server.set_faults(FaultSettings(include_paths=("/btql",)), org=src.name)
    try:
        result = await migrate(url, src, dst, tmp_path, migration_event_page_size=BATCH)
    finally:
        served = sandbox_server.fault_stats(src.name).requests
        sandbox_server.clear_faults()
    assert result.ok, result.summary_path.read_text()
    source, dest = all_rows(url, src, "project_logs", project), all_rows(url, dst, "project_logs", dest_id)
    assert set(dest) == set(source)
    assert all(comparable(dest[i]) == comparable(row) for i, row in source.items())
    # Rows that had landed keep their destination version: at most the in-flight ones were re-sent.
    rewritten = [i for i, xact in before.items() if dest[i]["_xact_id"] != xact]
    assert len(rewritten) <= IN_FLIGHT, f"{len(rewritten)} landed rows written again"
    # And the source was asked only for the rest (pages of BATCH rows, plus the empty last page).
    most = math.ceil((ROWS - landed + IN_FLIGHT) / BATCH) + 2
    assert served <= most, f"{served} BTQL requests to the source, expected at most {most}"


class RepeatingSource:
    """A fake source whose pages never move on: the same keys (or cursor) every time."""

    side = "source"

    def __init__(self, body: dict[str, Any]) -> None:
        self.body, self.calls = body, 0

    async def request(self, method: str, path: str, **_: Any) -> Any:
        self.calls += 1
        if self.calls > 50:
            raise AssertionError("the reader kept asking for the same page")
        return type("Response", (), {"content": orjson.dumps(self.body)})()

    def decode(self, response: Any, expect: type | None = None) -> Any:
        return orjson.loads(response.content)


class NoneSeen:
    def has(self, row_id: str) -> bool:
        return False


async def test_repeating_btql_key_is_an_error():
    """A source that ignores `_pagination_key > last` and serves its first page again."""
    rows = [{"id": f"r{i}", "_pagination_key": f"p{i:04d}"} for i in range(10)]
    source = RepeatingSource({"data": rows})
    reader = BtqlReader(source, "project_logs", "proj", page_size=10)  # type: ignore[arg-type]
    pages = 0
    with pytest.raises(ApiError, match="did not advance"):
        async for _ in reader.pages():
            pages += 1
    assert (pages, source.calls) == (1, 2)


async def test_btql_page_without_keys_is_an_error():
    source = RepeatingSource({"data": [{"id": f"r{i}"} for i in range(10)]})
    reader = BtqlReader(source, "project_logs", "proj", page_size=10)  # type: ignore[arg-type]
    with pytest.raises(ApiError, match="did not advance"):
        async for _ in reader.pages():
            pass


async def test_repeating_fetch_cursor_is_an_error():
    source = RepeatingSource({"events": [{"id": "a"}, {"id": "b"}], "cursor": "same"})
    reader = FetchReader(source, "project_logs", "proj", 2, NoneSeen())  # type: ignore[arg-type]
    pages = 0
    with pytest.raises(ApiError, match="did not advance"):
        async for _ in reader.pages():
            pages += 1
    assert pages == 1


async def test_fetch_stream_cancelled_mid_way_loses_no_row(
    sandbox_server, sandbox_orgs, tmp_path, monkeypatch
):
    """Without BTQL, ids are remembered only for pages the destination acknowledged: the
    pages read ahead but not written when the run was cancelled are read and written again."""
    import braintrust_migrate.client as client_module
    from tests.integration.events.test_stream_options import NoBtqlTransport

    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src) as c:
        project = c.post("/v1/project", json={"name": "Resume"}).json()["id"]
    rows = [{"id": f"r{i:04d}", "input": i, "span_id": f"s{i}", "root_span_id": f"s{i}"} for i in range(600)]
    insert(url, src, "project_logs", project, rows)
    real = client_module.client_for
    monkeypatch.setattr(
        "braintrust_migrate.source.live.client_for",  # where the source is opened
        lambda settings, side, transport=None: real(
            settings, side, transport=NoBtqlTransport() if side == "source" else transport
        ),
    )
    sandbox_server.set_faults(
        FaultSettings(latency_ms=300, include_paths=("/v1/project_logs",)), org=dst.name
    )
    options = {"migration_event_page_size": 30, "migration_insert_batch_rows": 30}
    task = asyncio.create_task(migrate(url, src, dst, tmp_path, **options))
    while not task.done() and dest_count(url, dst)[1] < 30:
        await asyncio.sleep(0.02)
    assert not task.done(), "the migration finished before the cancel: nothing was tested"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sandbox_server.clear_faults()
    dest_id, landed = dest_count(url, dst)
    assert dest_id and 30 <= landed < len(rows)
    result = await migrate(url, src, dst, tmp_path, **options)
    assert result.ok, result.summary_path.read_text()
    assert [c["reader"] for c in result.report["events"]["containers"]] == ["fetch"]  # the path under test
    assert sorted(all_rows(url, dst, "project_logs", dest_id)) == [r["id"] for r in rows]
