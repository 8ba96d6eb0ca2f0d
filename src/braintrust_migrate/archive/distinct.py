"""Counting distinct row ids in bounded memory: a set while it is small, then a temporary
on-disk SQLite table (a container of millions of rows would otherwise hold millions of ids)."""

from __future__ import annotations

import sqlite3

IN_MEMORY = 20_000  # ids kept in a set before they move to disk (each move blocks briefly)


class DistinctIds:
    def __init__(self, in_memory: int = IN_MEMORY) -> None:
        self.in_memory = in_memory
        self._ids: set[str] = set()
        self._db: sqlite3.Connection | None = None

    def add(self, row_id: str) -> None:
        self._ids.add(row_id)
        if len(self._ids) >= self.in_memory:
            self._spill()

    def _spill(self) -> None:
        if self._db is None:
            self._db = sqlite3.connect("")  # "": a private temporary database on disk
            self._db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", ((i,) for i in self._ids))
        self._ids.clear()

    def count(self) -> int:
        if self._db is None:
            return len(self._ids)
        self._spill()
        (total,) = self._db.execute("SELECT count(*) FROM ids").fetchone()
        return int(total)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
