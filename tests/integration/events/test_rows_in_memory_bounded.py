"""Rows read but not yet written stay within MIGRATION_MAX_BYTES_IN_FLIGHT while the destination
is slower than the source: a page waiting for room used to be read first, one per stream outside
the budget. Judged on the wire: rows the source has answered minus rows the destination has
acknowledged, sampled at every exchange (not the budget's own counter)."""

from __future__ import annotations

import pytest

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.harness import migrate
from tests.integration.events.wire import Wire, source_datasets

STREAMS = 6
PAGES = 60  # per container
PAGE = 10  # rows per page and per insert
BUDGET = 1_048_576  # the smallest allowed: ~23 pages of these rows once charged 3x their JSON


async def test_rows_held_stay_within_the_budget_while_writes_are_slow(
    sandbox_server, sandbox_orgs, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    rows = [[{"id": f"{n}-{i}", "input": "x" * 1500} for i in range(PAGES * PAGE)] for n in range(STREAMS)]
    source_datasets(url, src, "Big rows", rows)
    wire = Wire(src.api_key)
    wire.watch(monkeypatch)
    sandbox_server.set_faults(
        FaultSettings(latency_ms=150, include_paths=("/v1/dataset/",), methods=("POST",)), org=dst.name
    )
    result = await migrate(
        url, src, dst, tmp_path / "state",
        migration_max_bytes_in_flight=BUDGET, migration_event_page_size=PAGE,
        migration_insert_batch_rows=PAGE, migration_shared_read_rows=0,
    )  # fmt: skip
    sandbox_server.clear_faults()
    assert result.ok, result.summary_path.read_text()
    assert wire.read == wire.written == STREAMS * PAGES * PAGE
    # The budget's worth of rows as the source sent them (charged 3x their JSON), and one page
    # more: pages differ in size a little. (The page each stream read first, before any size was
    # known, fits in this budget.) Before, each stream held one more page read ahead of its room.
    allowed = BUDGET * wire.read // (3 * wire.read_bytes) + PAGE
    assert wire.peak <= allowed, (wire.peak, allowed)
