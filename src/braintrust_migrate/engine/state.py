"""Migration state in SQLite: the id map, checksums, versions and per-run outcomes.

One database per (source org, destination org) pair. Every change is committed
at once in WAL mode, so a `kill -9` at any instant leaves a consistent file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from braintrust_migrate.engine.private import FILE_MODE, make_dirs, private_file

STATE_FILE = "state.db"
TOOL_MARKER = "braintrust-migrate"
# Bumped when a change would mislead an older version reading the file.
# 2: id_map.created_by_tool (what --sync-deletes may delete).
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS id_map (
    kind TEXT NOT NULL,
    src_id TEXT NOT NULL,
    dest_id TEXT NOT NULL,
    src_checksum TEXT,
    dest_checksum TEXT,
    updated_at REAL NOT NULL,
    created_by_tool INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, src_id)
);
CREATE INDEX IF NOT EXISTS id_map_dest ON id_map (kind, dest_id);
CREATE TABLE IF NOT EXISTS xact_map (
    kind TEXT NOT NULL,
    src_id TEXT NOT NULL,
    src_xact TEXT NOT NULL,
    dest_xact TEXT NOT NULL,
    PRIMARY KEY (kind, src_id, src_xact)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    options TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    src_id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, src_id)
);
CREATE TABLE IF NOT EXISTS invocations (
    run_id TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_streams (
    run_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    spec TEXT NOT NULL,
    rows_read INTEGER NOT NULL,
    rows_written INTEGER NOT NULL,
    rows_failed INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (run_id, stream)
);
"""


@dataclass(frozen=True)
class Mapping:
    kind: str
    src_id: str
    dest_id: str
    src_checksum: str | None
    dest_checksum: str | None
    created_by_tool: bool = False  # we created it (not adopted an equal one): --sync-deletes may delete it


def _mapping(row: tuple[Any, ...]) -> Mapping:
    return Mapping(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


def pair_folder(state_dir: Path, source_org: str, dest_org: str) -> Path:
    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]

    return state_dir / f"{safe(source_org)}__to__{safe(dest_org)}"


def _create_whole(path: Path) -> None:
    """Make a new state beside `path` and link it into place with its tables and marker.

    A process killed while making it (kill -9 between the file's creation and SQLite's first
    write) leaves only `<name>.new`, never an empty state.db: an empty state.db can then only
    mean a state that lost its contents, which is refused rather than silently started anew.
    """
    temp = path.with_name(path.name + ".new")
    for leftover in (temp, *(temp.with_name(temp.name + s) for s in ("-journal", "-wal", "-shm"))):
        leftover.unlink(missing_ok=True)  # a creation killed earlier: nothing in it was used
    private_file(temp)
    con = sqlite3.connect(temp, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")  # recorded in the file: it stays WAL once in place
        con.executescript(SCHEMA)
        con.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("tool", TOOL_MARKER), ("schema_version", str(SCHEMA_VERSION))],
        )
    finally:
        con.close()  # the last connection folds the WAL into the file and removes it
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(FileExistsError):  # never replace a state another process made meanwhile
        os.link(temp, path)
    temp.unlink()


class StateStore:
    def __init__(self, path: Path) -> None:
        make_dirs(path.parent)
        self.path = path
        if not path.exists():
            _create_whole(path)
        private_file(path)  # the state names every object of both orgs
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        # SQLite gives -wal/-shm the main file's mode; make sure of it for files made before.
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path.with_name(path.name + suffix), FILE_MODE)
        if self.get_meta("tool") is None:
            self.set_meta("tool", TOOL_MARKER)
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        self._migrate()

    def _migrate(self) -> None:
        """Bring a state of an older schema up to this one (the file is checked newer-or-equal before)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(id_map)")}
        if "created_by_tool" not in columns:
            self._db.execute("ALTER TABLE id_map ADD COLUMN created_by_tool INTEGER NOT NULL DEFAULT 0")
            # What a recorded run created (the same destination object): ours. Anything else stays
            # 'adopted', which only ever means fewer deletions.
            self._db.execute(
                "UPDATE id_map SET created_by_tool = 1 WHERE EXISTS (SELECT 1 FROM outcomes o"
                " WHERE o.kind = id_map.kind AND o.src_id = id_map.src_id"
                " AND json_extract(o.record, '$.action') = 'created'"
                " AND json_extract(o.record, '$.dest_id') = id_map.dest_id)"
            )
        version = self.get_meta("schema_version") or "1"
        if version.isdigit() and int(version) < SCHEMA_VERSION:
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        self._db.close()

    # meta
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # id map
    _COLUMNS = "SELECT kind, src_id, dest_id, src_checksum, dest_checksum, created_by_tool FROM id_map"

    def mapping(self, kind: str, src_id: str) -> Mapping | None:
        row = self._db.execute(self._COLUMNS + " WHERE kind = ? AND src_id = ?", (kind, src_id)).fetchone()
        return _mapping(row) if row else None

    def mappings(self, kind: str | None = None) -> Iterator[Mapping]:
        query = self._COLUMNS
        rows = self._db.execute(query + " WHERE kind = ?", (kind,)) if kind else self._db.execute(query)
        for row in rows.fetchall():
            yield _mapping(row)

    def record_mapping(
        self,
        kind: str,
        src_id: str,
        dest_id: str,
        src_checksum: str | None,
        dest_checksum: str | None,
        *,
        created: bool = False,
    ) -> None:
        """Record (or update) a mapping; once created by the tool, a mapping stays so while it
        points at the same destination object."""
        self._db.execute(
            "INSERT INTO id_map (kind, src_id, dest_id, src_checksum, dest_checksum, updated_at, created_by_tool)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, src_id) DO UPDATE SET"
            " created_by_tool = CASE WHEN excluded.created_by_tool = 1 OR id_map.dest_id = ''"
            " OR id_map.dest_id = excluded.dest_id"
            " THEN max(id_map.created_by_tool, excluded.created_by_tool) ELSE 0 END,"
            " dest_id = excluded.dest_id, src_checksum = excluded.src_checksum,"
            " dest_checksum = excluded.dest_checksum, updated_at = excluded.updated_at",
            (kind, src_id, dest_id, src_checksum, dest_checksum, time.time(), int(created)),
        )

    def forget_mapping(self, kind: str, src_id: str) -> None:
        self._db.execute("DELETE FROM id_map WHERE kind = ? AND src_id = ?", (kind, src_id))

    # versions (transaction ids)
    def record_xact(self, kind: str, src_id: str, src_xact: str, dest_xact: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO xact_map (kind, src_id, src_xact, dest_xact) VALUES (?, ?, ?, ?)",
            (kind, src_id, src_xact, dest_xact),
        )

    def dest_xact(self, kind: str, src_id: str, src_xact: str) -> str | None:
        row = self._db.execute(
            "SELECT dest_xact FROM xact_map WHERE kind = ? AND src_id = ? AND src_xact = ?",
            (kind, src_id, src_xact),
        ).fetchone()
        return row[0] if row else None

    # runs
    def last_run(self) -> tuple[str, str] | None:
        row = self._db.execute("SELECT run_id, status FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else None

    def start_run(self, run_id: str, options: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO runs (run_id, started_at, status, options) VALUES (?, ?, 'running', ?)",
            (run_id, time.time(), orjson.dumps(options).decode()),
        )
        self._db.execute("UPDATE runs SET status = 'running', finished_at = NULL WHERE run_id = ?", (run_id,))

    def finish_run(self, run_id: str, status: str) -> None:
        self._db.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", (status, time.time(), run_id)
        )

    def start_invocation(self, run_id: str) -> int:
        """Record one more invocation of `run_id`; how many it has had, this one included."""
        self._db.execute(
            "INSERT INTO invocations (run_id, started_at, status) VALUES (?, ?, 'running')",
            (run_id, time.time()),
        )
        return int(
            self._db.execute("SELECT COUNT(*) FROM invocations WHERE run_id = ?", (run_id,)).fetchone()[0]
        )

    def finish_invocation(self, run_id: str, status: str) -> None:
        self._db.execute(
            "UPDATE invocations SET status = ?, finished_at = ? WHERE rowid ="
            " (SELECT MAX(rowid) FROM invocations WHERE run_id = ?)",
            (status, time.time(), run_id),
        )

    def run_status(self, run_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    # event rows per run, over all its invocations
    def run_streams(self, run_id: str) -> dict[str, dict[str, Any]]:
        rows = self._db.execute(
            "SELECT stream, spec, rows_read, rows_written, rows_failed, bytes FROM run_streams"
            " WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
        names = ("rows_read", "rows_written", "rows_failed", "bytes")
        return {r[0]: {"spec": orjson.loads(r[1]), **dict(zip(names, r[2:], strict=True))} for r in rows}

    def save_run_stream(self, run_id: str, stream: str, spec: dict[str, Any], counts: dict[str, int]) -> None:
        self._db.execute(
            "INSERT INTO run_streams (run_id, stream, spec, rows_read, rows_written, rows_failed, bytes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, stream) DO UPDATE SET spec = excluded.spec,"
            " rows_read = excluded.rows_read, rows_written = excluded.rows_written,"
            " rows_failed = excluded.rows_failed, bytes = excluded.bytes",
            (
                run_id,
                stream,
                orjson.dumps(spec).decode(),
                counts["rows_read"],
                counts["rows_written"],
                counts["rows_failed"],
                counts["bytes"],
            ),
        )

    def record_outcome(self, run_id: str, kind: str, src_id: str, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO outcomes (run_id, kind, src_id, record) VALUES (?, ?, ?, ?)",
            (run_id, kind, src_id, orjson.dumps(record).decode()),
        )

    def outcomes(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT record FROM outcomes WHERE run_id = ? ORDER BY rowid", (run_id,))
        return [orjson.loads(row[0]) for row in rows]
