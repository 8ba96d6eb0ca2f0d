"""Progress of a run on stderr: a live display on a terminal, plain periodic lines otherwise.

Log lines and the live display share one Console (`console`): logs print above the display,
never through it. Rates are measured over a sliding window and only once it spans a second,
so a first batch landing within microseconds of the start never reads as millions of rows/s.

Labels go through textsafe.markup_safe: Rich reads them as markup, and a terminal obeys
control characters, so neither may come raw from an org's data."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Literal

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from braintrust_migrate.engine.resources import STREAMS
from braintrust_migrate.textsafe import markup_safe

# The one stderr console: structlog lines print through it (see logs.py).
console = Console(stderr=True, soft_wrap=True)

WINDOW_S = 10.0  # rates cover the last 10 seconds
MIN_SPAN_S = 1.0  # below this a rate is noise: not shown
PLAIN_INTERVAL_S = 10.0
INTERVAL_ENV = "BRAINTRUST_MIGRATE_PROGRESS_INTERVAL"  # seconds between plain lines (tests shorten it)
ACTION_SHORT = {"created": "new", "updated": "upd", "unchanged": "same", "conflict": "conflict"}

Mode = Literal["live", "plain", "off"]
_line_format = "text"


def set_line_format(fmt: str) -> None:
    """The log format (logs.configure_logging): plain progress lines follow it."""
    global _line_format
    _line_format = fmt


def rows_label(kind: str) -> str:
    stream = STREAMS.get(kind)
    return f"{stream.label if stream else kind} rows"


def _interval_from_env() -> float:
    try:
        return max(float(os.environ.get(INTERVAL_ENV, PLAIN_INTERVAL_S)), 0.1)
    except ValueError:
        return PLAIN_INTERVAL_S


class Rate:
    """Rows and bytes per second over the last WINDOW_S seconds; None until that is meaningful."""

    def __init__(self, now: float) -> None:
        self.points: deque[tuple[float, int, int]] = deque([(now, 0, 0)])
        self.rows = 0
        self.bytes = 0

    def add(self, now: float, rows: int, nbytes: int) -> None:
        self.rows += rows
        self.bytes += nbytes
        self.points.append((now, self.rows, self.bytes))
        # Keep one point at or before the window start, so the window is always spanned.
        while len(self.points) > 2 and self.points[1][0] <= now - WINDOW_S:
            self.points.popleft()

    def per_second(self, now: float) -> tuple[float, float] | None:
        t0, rows0, bytes0 = self.points[0]
        span = now - t0
        if span < MIN_SPAN_S:
            return None
        return (self.rows - rows0) / span, (self.bytes - bytes0) / span


class ProgressView:
    """`enabled=None`: live on a terminal, plain lines otherwise; False: silent (library callers)."""

    def __init__(self, enabled: bool | None = None, interval: float | None = None) -> None:
        self.mode: Mode = "off" if enabled is False else ("live" if console.is_terminal else "plain")
        self.enabled = self.mode != "off"
        self.interval = interval or _interval_from_env()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._objects_total = 0
        self._per_type: dict[str, Counter[str]] = {}
        self._type_totals: dict[str, int] = {}
        self._rows_total: dict[str, int] = {}
        self._rates: dict[str, Rate] = {}
        self._all_rows = Rate(time.monotonic())
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._running = False

    # lifecycle
    def start(self, totals: Mapping[str, int]) -> None:
        if self.mode == "off":
            return
        self._running = True
        self._type_totals = dict(totals)
        self._objects_total = sum(totals.values())
        if self.mode == "live":
            self._progress = Progress(
                TextColumn("{task.description:<22}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._progress.start()
            for name, total in totals.items():
                self._tasks[name] = self._progress.add_task(markup_safe(name), total=total, detail="")
        else:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="progress-lines", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join(timeout=2)
            self._ticker = None
            self._print_plain()

    # objects
    def advance(self, name: str, action: str) -> None:
        if not self._running:
            return
        with self._lock:
            counts = self._per_type.setdefault(name, Counter())
            counts[action] += 1
            if name not in self._type_totals:
                self._type_totals[name] = 0
        if self._progress is None:
            return
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(markup_safe(name), total=None, detail="")
        detail = " ".join(f"{n} {ACTION_SHORT.get(a, a)}" for a, n in sorted(counts.items()))
        self._progress.update(self._tasks[name], advance=1, detail=markup_safe(detail))

    # rows
    def _row_task(self, kind: str) -> str:
        """One task (and one label) per stream kind, whichever of totals or rows comes first."""
        label = rows_label(kind)
        if label not in self._rates:
            self._rates[label] = Rate(time.monotonic())
        if self._progress is not None and label not in self._tasks:
            self._tasks[label] = self._progress.add_task(markup_safe(label), total=None, detail="")
        return label

    def add_rows_total(self, kind: str, total: int) -> None:
        if not self._running:
            return
        with self._lock:
            label = self._row_task(kind)
            self._rows_total[label] = total
        if self._progress is not None:
            self._progress.update(self._tasks[label], total=total or None)

    def advance_rows(self, spec: object, rows: int, nbytes: int) -> None:
        if not self._running:
            return
        now = time.monotonic()
        with self._lock:
            label = self._row_task(str(getattr(spec, "kind", "event")))
            rate = self._rates[label]
            rate.add(now, rows, nbytes)
            self._all_rows.add(now, rows, nbytes)
            per_second = rate.per_second(now)
        if self._progress is None:
            return
        task = self._progress.tasks[self._tasks[label]]
        detail = ""
        if per_second:
            rows_s, bytes_s = per_second
            left = (task.total or 0) - (task.completed + rows)
            eta = f" eta {left / rows_s:.0f}s" if task.total and rows_s > 0 and left > 0 else ""
            detail = f"{rows_s:,.0f} rows/s {bytes_s / 1048576:.1f} MiB/s{eta}"
        # Row versions (dataset history) can outnumber the live rows counted up front.
        total = max(task.total, task.completed + rows) if task.total else None
        self._progress.update(self._tasks[label], advance=rows, total=total, detail=detail)

    # follow mode
    def follow_lag(self, passes: int, rows_behind: int, seconds_behind: float, rows_copied: int) -> None:
        """The lag after a follow pass: a live line on a terminal, a line per pass otherwise."""
        if not self._running:
            return
        detail = f"{rows_behind:,} rows / {seconds_behind:.1f}s behind, {rows_copied:,} rows copied"
        if self._progress is not None:
            if "follow" not in self._tasks:
                self._tasks["follow"] = self._progress.add_task("following", total=None, detail="")
            self._progress.update(self._tasks["follow"], completed=passes, detail=detail)
        elif _line_format == "json":
            structlog.get_logger("braintrust_migrate.progress").info(
                "follow", passes=passes, rows_behind=rows_behind, seconds_behind=seconds_behind,
                rows_copied=rows_copied,
            )  # fmt: skip
        else:
            console.print(Text(f"follow: pass {passes}, {detail}"), soft_wrap=True, highlight=False)

    # plain lines
    def plain_stats(self) -> dict[str, int]:
        with self._lock:
            done = sum(sum(c.values()) for c in self._per_type.values())
            stats = {"objects": done, "objects_total": max(self._objects_total, done)}
            stats["rows"] = self._all_rows.rows
            stats["rows_total"] = sum(self._rows_total.values())
            per_second = self._all_rows.per_second(time.monotonic())
        if per_second:
            stats["rows_per_s"] = round(per_second[0])
        return stats

    def plain_line(self) -> str:
        stats = self.plain_stats()
        rows, rows_total = stats["rows"], stats["rows_total"]
        line = f"progress: objects {stats['objects']:,}/{stats['objects_total']:,}"
        if rows or rows_total:
            line += f", rows {rows:,}/{max(rows_total, rows):,}" if rows_total else f", rows {rows:,}"
            if "rows_per_s" in stats:
                line += f" ({stats['rows_per_s']:,} rows/s)"
        return line

    def _print_plain(self) -> None:
        if _line_format == "json":  # stderr stays one JSON object per line
            structlog.get_logger("braintrust_migrate.progress").info("progress", **self.plain_stats())
            return
        console.print(Text(self.plain_line()), soft_wrap=True, highlight=False)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._print_plain()
