"""The ids of rows the tool wrote (what --sync-deletes may delete): one record per batch, read as
one set per stream, with the ids a state of the earlier one-row-per-id table holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from braintrust_migrate.engine.events.state import EventState
from braintrust_migrate.engine.state import StateStore


def test_batches_read_as_one_set_and_forgetting_keeps_the_rest(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    events = EventState(store)
    events.mark_copied("dataset:a", ["r1", "r2", "r3"])
    events.mark_copied("dataset:a", ["r3", "r4"])  # a batch sent again after a resume
    events.mark_copied("dataset:a", ["r3", "r4"])
    events.mark_copied("dataset:b", ["x"])
    events.mark_copied("dataset:c", [])
    assert events.copied("dataset:a") == {"r1", "r2", "r3", "r4"}
    events.forget_copied("dataset:a", ["r2", "r4"])
    assert events.copied("dataset:a") == {"r1", "r3"}
    events.forget_copied("dataset:b")
    assert events.copied("dataset:b") == set() and events.copied("dataset:c") == set()
    store.close()
    con = sqlite3.connect(tmp_path / "state.db")
    assert con.execute("SELECT count(*) FROM copied_batches WHERE stream = 'dataset:a'").fetchone() == (1,)
    con.close()


def test_ids_recorded_one_per_row_by_an_earlier_version_still_count(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    events = EventState(store)
    store._db.executemany("INSERT INTO copied_rows VALUES (?, ?)", [("logs:p", "old1"), ("logs:p", "old2")])
    events.mark_copied("logs:p", ["new1"])
    assert events.copied("logs:p") == {"old1", "old2", "new1"}
    events.forget_copied("logs:p", ["old1"])
    assert events.copied("logs:p") == {"old2", "new1"}
    assert store._db.execute("SELECT count(*) FROM copied_rows").fetchone() == (0,)  # moved into a batch
