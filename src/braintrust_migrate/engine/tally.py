"""Event-row counts of one run over all its invocations.

A resumed run reports the rows every invocation wrote, not only the last one's. Rows
written are counted as the destination acknowledges them (also in streams cut short by
an interrupt) and saved in the state after each batch, so an interrupted invocation's
rows are still counted when the run is resumed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, cast

from braintrust_migrate.engine.events.stream import StreamOutcome, StreamSpec
from braintrust_migrate.engine.state import StateStore

COUNTS = ("rows_read", "rows_written", "rows_failed", "bytes")
# Throughput points: one every 0.1 s at most, so even a short run draws a curve; beyond
# MAX_POINTS the resolution halves (0.1 s for 72 s, ~6.4 s for an hour), so the report stays small.
SAMPLE_S = 0.1
MAX_POINTS = 720


def _key(spec: StreamSpec) -> str:
    return f"{spec.kind}:{spec.src_id}"


def _spec_dict(spec: StreamSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


class Throughput:
    """Event rows this invocation wrote over time, for the report's chart: points of
    (seconds since the start, rows written so far, bytes so far), taken as batches land."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.start = clock, clock()
        self.interval = SAMPLE_S
        self.rows = self.bytes = 0
        self.points: list[tuple[float, int, int]] = [(0.0, 0, 0)]
        self.latest: tuple[float, int, int] | None = None  # the newest batch, between samples

    def add(self, rows: int, nbytes: int) -> None:
        self.rows += rows
        self.bytes += nbytes
        point = (round(self.clock() - self.start, 3), self.rows, self.bytes)
        if point[0] - self.points[-1][0] < self.interval:
            self.latest = point
            return
        if self.latest and point[0] - self.latest[0] >= self.interval:
            self.points.append(self.latest)  # the end of a burst before a pause: the chart shows the pause
        self.points.append(point)
        self.latest = None
        if len(self.points) > MAX_POINTS:
            self.points, self.interval = self.points[::2], self.interval * 2
            if self.points[-1] != point:
                self.latest = point

    def to_dict(self) -> dict[str, Any]:
        points = self.points + ([self.latest] if self.latest else [])
        return {"interval_s": self.interval, "points": [list(p) for p in points]}


class StreamTally:
    def __init__(self, state: StateStore | None, run_id: str) -> None:
        self.state, self.run_id = state, run_id
        stored = state.run_streams(run_id) if state else {}
        # What earlier invocations of this run counted, read once before this one adds to it.
        self.earlier = {key: {c: row[c] for c in COUNTS} for key, row in stored.items()}
        self.specs: dict[str, StreamSpec] = {key: StreamSpec(**row["spec"]) for key, row in stored.items()}
        self.live: dict[str, dict[str, int]] = {}
        self.throughput = Throughput()

    def _base(self, key: str) -> dict[str, int]:
        return self.earlier.get(key) or dict.fromkeys(COUNTS, 0)

    def on_rows(self, spec: StreamSpec, rows: int, nbytes: int) -> None:
        """One acknowledged batch of this invocation."""
        key = _key(spec)
        self.specs[key] = spec
        self.throughput.add(rows, nbytes)
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
            # The counts are StreamOutcome's int fields (COUNTS): mypy cannot see which keys `total` has.
            out[key] = StreamOutcome(spec, status=status, **cast(dict[str, Any], total))
        return list(out.values())
