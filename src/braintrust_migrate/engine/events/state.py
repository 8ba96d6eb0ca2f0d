"""Per-stream checkpoints and the few de-duplication records that inserts by id cannot give.

Rows keep their ids, so a row sent twice replaces itself and needs no record. A
checkpoint is saved each time it moves past an acknowledged batch, so a resume never
reads an acknowledged row again. Also remembered: copied attachments (an upload per key
is wasted work) and, for the /fetch fallback only, the ids on acknowledged pages (fetch
pages return older versions of a row after newer ones). Comments (feedback appends) are
de-duplicated against the destination itself (comments.py); `copied_comments` is only
consulted when the destination has no BTQL to read them back from. `copied_batches` holds the
ids of rows this tool wrote, per stream, one JSON list per acknowledged batch (one SQLite row
per batch, not per id: a row per id cost ~5 us of CPU per copied row); --sync-deletes deletes
only those (never rows an application logged into the destination itself). States written
before keep theirs in `copied_rows`, which is still read.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import orjson

from braintrust_migrate.engine.state import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    stream TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    src_id TEXT NOT NULL,
    dest_id TEXT NOT NULL,
    checkpoint TEXT,
    cursor TEXT,
    rows_read INTEGER NOT NULL DEFAULT 0,
    rows_written INTEGER NOT NULL DEFAULT 0,
    rows_failed INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_failures (
    stream TEXT NOT NULL, row_id TEXT NOT NULL, size INTEGER, error TEXT, PRIMARY KEY (stream, row_id)
);
CREATE TABLE IF NOT EXISTS copied_comments (stream TEXT NOT NULL, comment TEXT NOT NULL, PRIMARY KEY (stream, comment));
CREATE TABLE IF NOT EXISTS copied_attachments (src_key TEXT PRIMARY KEY, dest_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fetch_seen (stream TEXT NOT NULL, row_id TEXT NOT NULL, PRIMARY KEY (stream, row_id));
CREATE TABLE IF NOT EXISTS copied_rows (
    stream TEXT NOT NULL, row_id TEXT NOT NULL, PRIMARY KEY (stream, row_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS copied_batches (
    stream TEXT NOT NULL, digest BLOB NOT NULL, ids BLOB NOT NULL, PRIMARY KEY (stream, digest)
);
"""


@dataclass
class StreamState:
    stream: str
    kind: str
    src_id: str
    dest_id: str
    checkpoint: str | None = None
    cursor: str | None = None
    rows_read: int = 0
    rows_written: int = 0
    rows_failed: int = 0
    bytes: int = 0
    status: str = "pending"
    new: bool = False  # made by this load (no run before had this stream); not stored


class EventState:
    def __init__(self, store: StateStore) -> None:
        self.db = store._db
        self.db.executescript(SCHEMA)

    def load(self, kind: str, src_id: str, dest_id: str, *, fresh: bool) -> StreamState:
        stream = f"{kind}:{src_id}"
        row = self.db.execute(
            "SELECT stream, kind, src_id, dest_id, checkpoint, cursor, rows_read, rows_written, rows_failed, bytes, status"
            " FROM streams WHERE stream = ?",
            (stream,),
        ).fetchone()
        if row is None or fresh or row[3] != dest_id:
            state = StreamState(stream, kind, src_id, dest_id, new=row is None)
            self.db.execute("DELETE FROM fetch_seen WHERE stream = ?", (stream,))
            self.db.execute("DELETE FROM stream_failures WHERE stream = ?", (stream,))
            if row is not None and row[3] != dest_id:  # another destination container: not its rows
                self.forget_copied(stream)
            self.save(state)
            return state
        return StreamState(*row)

    def save(self, state: StreamState) -> None:
        self.save_all([state])

    def save_all(self, states: list[StreamState]) -> None:
        """Streams' states in one transaction (a shared stream moves all its members at once)."""
        rows = [
            (
                state.stream,
                state.kind,
                state.src_id,
                state.dest_id,
                state.checkpoint,
                state.cursor,
                state.rows_read,
                state.rows_written,
                state.rows_failed,
                state.bytes,
                state.status,
                time.time(),
            )
            for state in states
        ]
        sql = (
            "INSERT OR REPLACE INTO streams (stream, kind, src_id, dest_id, checkpoint, cursor, rows_read,"
            " rows_written, rows_failed, bytes, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        if len(rows) == 1:
            self.db.execute(sql, rows[0])
            return
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(sql, rows)

    def record_failure(self, stream: str, row_id: str, size: int, error: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO stream_failures (stream, row_id, size, error) VALUES (?, ?, ?, ?)",
            (stream, row_id, size, error),
        )

    def clear_failure(self, stream: str, row_ids: list[str]) -> None:
        self.db.executemany(
            "DELETE FROM stream_failures WHERE stream = ? AND row_id = ?", [(stream, r) for r in row_ids]
        )

    def failures(self, stream: str) -> list[dict[str, object]]:
        rows = self.db.execute("SELECT row_id, size, error FROM stream_failures WHERE stream = ?", (stream,))
        return [{"row_id": r[0], "size": r[1], "error": r[2]} for r in rows]

    def comment_done(self, stream: str, comment: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM copied_comments WHERE stream = ? AND comment = ?", (stream, comment)
            ).fetchone()
            is not None
        )

    def mark_comments(self, stream: str, comments: list[str]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO copied_comments VALUES (?, ?)", [(stream, c) for c in comments]
        )

    def attachment(self, src_key: str) -> str | None:
        row = self.db.execute(
            "SELECT dest_key FROM copied_attachments WHERE src_key = ?", (src_key,)
        ).fetchone()
        return row[0] if row else None

    def mark_attachment(self, src_key: str, dest_key: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO copied_attachments VALUES (?, ?)", (src_key, dest_key))

    def seen(self, stream: str, row_id: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM fetch_seen WHERE stream = ? AND row_id = ?", (stream, row_id)
            ).fetchone()
            is not None
        )

    def mark_seen(self, stream: str, row_ids: list[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO fetch_seen VALUES (?, ?)", [(stream, r) for r in row_ids])

    # rows this tool wrote (what --sync-deletes may delete)
    def mark_copied(self, stream: str, row_ids: list[str]) -> None:
        if not row_ids:
            return
        ids = orjson.dumps(row_ids)
        digest = hashlib.blake2b(ids, digest_size=16).digest()  # the same batch twice: kept once
        self.db.execute("INSERT OR IGNORE INTO copied_batches VALUES (?, ?, ?)", (stream, digest, ids))

    def copied(self, stream: str) -> set[str]:
        found = {r[0] for r in self.db.execute("SELECT row_id FROM copied_rows WHERE stream = ?", (stream,))}
        for (ids,) in self.db.execute("SELECT ids FROM copied_batches WHERE stream = ?", (stream,)):
            found.update(orjson.loads(ids))
        return found

    def forget_copied(self, stream: str, row_ids: list[str] | None = None) -> None:
        """Forget all of a stream's copied ids, or these: the rest are kept as one batch."""
        kept = set() if row_ids is None else self.copied(stream) - set(row_ids)
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM copied_rows WHERE stream = ?", (stream,))
            self.db.execute("DELETE FROM copied_batches WHERE stream = ?", (stream,))
        self.mark_copied(stream, sorted(kept))

    def streams_of(self) -> list[tuple[str, str, str, str]]:
        """(stream, kind, src_id, dest_id) of every stream this state has written rows for."""
        rows = self.db.execute(
            "SELECT stream, kind, src_id, dest_id FROM streams WHERE stream IN"
            " (SELECT stream FROM copied_rows UNION SELECT stream FROM copied_batches) ORDER BY stream"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]
