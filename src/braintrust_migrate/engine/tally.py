"""Event-row counts of one run over all its invocations.

A resumed run reports the rows every invocation wrote, not only the last one's. Rows
written are counted as the destination acknowledges them (also in streams cut short by
an interrupt) and saved in the state after each batch, so an interrupted invocation's
rows are still counted when the run is resumed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from braintrust_migrate.engine.events.stream import StreamOutcome, StreamSpec
from braintrust_migrate.engine.state import StateStore

COUNTS = ("rows_read", "rows_written", "rows_failed", "bytes")


def _key(spec: StreamSpec) -> str:
    return f"{spec.kind}:{spec.src_id}"


def _spec_dict(spec: StreamSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


class StreamTally:
    def __init__(self, state: StateStore | None, run_id: str) -> None:
        self.state, self.run_id = state, run_id
        stored = state.run_streams(run_id) if state else {}
        # What earlier invocations of this run counted, read once before this one adds to it.
        self.earlier = {key: {c: row[c] for c in COUNTS} for key, row in stored.items()}
        self.specs: dict[str, StreamSpec] = {key: StreamSpec(**row["spec"]) for key, row in stored.items()}
        self.live: dict[str, dict[str, int]] = {}

    def _base(self, key: str) -> dict[str, int]:
        return self.earlier.get(key) or dict.fromkeys(COUNTS, 0)

    def on_rows(self, spec: StreamSpec, rows: int, nbytes: int) -> None:
        """One acknowledged batch of this invocation."""
        key = _key(spec)
        self.specs[key] = spec
        live = self.live.setdefault(key, dict.fromkeys(COUNTS, 0))
        live["rows_written"] += rows
        # Rows read but not yet written are read again on resume: count only the handled ones.
        live["rows_read"] += rows
        live["bytes"] += nbytes
        self._save(key, self._sum(key, live))

    def _sum(self, key: str, this: dict[str, int]) -> dict[str, int]:
        base = self._base(key)
        total = {c: base[c] + this[c] for c in COUNTS}
        total["rows_failed"] = base["rows_failed"]  # this invocation's failures are known at the stream's end
        return total

    def _save(self, key: str, counts: dict[str, int]) -> None:
        if self.state is not None:
            self.state.save_run_stream(self.run_id, key, _spec_dict(self.specs[key]), counts)

    def merged(self, finished: list[StreamOutcome], *, interrupted: bool) -> list[StreamOutcome]:
        """Every stream of the run: finished ones of this invocation, ones cut short, earlier ones."""
        out: dict[str, StreamOutcome] = {}
        for outcome in finished:
            key = _key(outcome.spec)
            self.specs[key] = outcome.spec
            this = {c: getattr(outcome, c) for c in COUNTS}
            # A stream that ran to its end in this invocation: its failures are the current ones.
            total = {c: self._base(key)[c] + this[c] for c in COUNTS}
            total["rows_failed"] = this["rows_failed"]
            self._save(key, total)
            out[key] = dataclasses.replace(outcome, **total)
        for key, spec in self.specs.items():
            if key in out:
                continue
            total = self._sum(key, self.live.get(key) or dict.fromkeys(COUNTS, 0))
            status = "interrupted" if interrupted else "running" if key in self.live else "pending"
            out[key] = StreamOutcome(spec, status=status, **total)
        return list(out.values())
