"""Live progress on a terminal; silence otherwise (the per-object log lines say it all).

Labels go through textsafe.markup_safe: Rich reads them as markup, and a terminal obeys
control characters, so neither may come raw from an org's data."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from braintrust_migrate.textsafe import markup_safe


class ProgressView:
    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._bytes: dict[str, int] = {}

    def start(self, totals: Mapping[str, int]) -> None:
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.start()
        for name, total in totals.items():
            self._tasks[name] = self._progress.add_task(markup_safe(name), total=total, detail="")

    def advance(self, name: str, action: str) -> None:
        if self._progress is None:
            return
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(markup_safe(name), total=None, detail="")
        self._progress.update(self._tasks[name], advance=1, detail=markup_safe(action))

    def add_rows_total(self, kind: str, total: int) -> None:
        if self._progress is None:
            return
        name = f"{kind} rows"
        self._tasks[name] = self._progress.add_task(markup_safe(name), total=total or None, detail="")
        self._started[name] = time.perf_counter()

    def advance_rows(self, spec: object, rows: int, nbytes: int) -> None:
        if self._progress is None:
            return
        name = f"{getattr(spec, 'kind', 'event')} rows"
        if name not in self._tasks:
            self.add_rows_total(getattr(spec, "kind", "event"), 0)
        self._bytes[name] = self._bytes.get(name, 0) + nbytes
        task = self._progress.tasks[self._tasks[name]]
        elapsed = max(time.perf_counter() - self._started[name], 1e-6)
        done = task.completed + rows
        rate = done / elapsed
        eta = f" eta {((task.total or done) - done) / rate:.0f}s" if task.total and rate else ""
        detail = f"{rate:,.0f} rows/s {self._bytes[name] / elapsed / 1048576:.1f} MiB/s{eta}"
        self._progress.update(self._tasks[name], advance=rows, detail=detail)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
