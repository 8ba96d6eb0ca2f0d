"""Live progress on a terminal; silence otherwise (the per-object log lines say it all)."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressView:
    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}

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
            self._tasks[name] = self._progress.add_task(name, total=total, detail="")

    def advance(self, name: str, action: str) -> None:
        if self._progress is None:
            return
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=None, detail="")
        self._progress.update(self._tasks[name], advance=1, detail=action)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
