"""SQLite storage for the sandbox server.

One connection, guarded by one re-entrant lock: every HTTP request runs inside a
single :meth:`Store.transaction` (``BEGIN IMMEDIATE`` ... ``COMMIT``), so requests
are serialisable and a failed request leaves nothing behind. File databases use
WAL mode. Later parts (event tables for logs / experiments / datasets) add their
own tables through :meth:`Store.add_schema` and run inside the same transactions.

Control-plane objects of every type share one table, ``objects``:

* ``seq``    monotonic creation sequence (lists are newest first = ``seq DESC``;
             pagination cursors are object ids translated to their ``seq``);
* ``type``   object type name (``project``, ``role``, ``organization``, ``user``...);
* ``id``     uuid, unique across all types;
* ``org_id`` owning org (``NULL`` for global rows: users and system roles);
* ``ident``  the identity key for "POST returns the existing object" lookups;
* ``deleted`` soft-delete flag (deleted rows keep their ``seq`` so cursors survive);
* ``body``   the object exactly as the API returns it (JSON);
* ``secret`` write-only values (AI secret, env var value) that are never returned.

Users are global (unique by lower-cased email, stored as their ``ident``) and join
orgs through ``memberships``. API keys map a raw key to a user and a set of orgs.
Prompt / function versions live in ``object_versions`` keyed by ``_xact_id``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    type    TEXT NOT NULL,
    id      TEXT NOT NULL UNIQUE,
    org_id  TEXT,
    ident   TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    body    TEXT NOT NULL,
    secret  TEXT
);
CREATE INDEX IF NOT EXISTS objects_by_type ON objects (type, org_id, deleted, seq);
CREATE INDEX IF NOT EXISTS objects_by_ident ON objects (type, ident) WHERE deleted = 0;
CREATE TABLE IF NOT EXISTS memberships (
    org_id  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX IF NOT EXISTS memberships_by_user ON memberships (user_id);
-- Users an org has ever had as members (invited, joined): the only ones it may invite by id.
CREATE TABLE IF NOT EXISTS known_users (
    org_id  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
INSERT OR IGNORE INTO known_users (org_id, user_id) SELECT org_id, user_id FROM memberships;
CREATE TABLE IF NOT EXISTS service_accounts (
    user_id TEXT PRIMARY KEY,
    org_id  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key       TEXT PRIMARY KEY,
    user_id   TEXT NOT NULL,
    object_id TEXT
);
CREATE TABLE IF NOT EXISTS api_key_orgs (
    key    TEXT NOT NULL,
    org_id TEXT NOT NULL,
    PRIMARY KEY (key, org_id)
);
CREATE TABLE IF NOT EXISTS object_versions (
    object_id TEXT NOT NULL,
    xact_id   INTEGER NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (object_id, xact_id)
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

# Transaction ids look like the hosted API's (19 digits, e.g. 1000192656880881099):
# a fixed prefix plus milliseconds since the epoch times 1000, bumped when needed
# so they stay strictly increasing even within one millisecond or after a clock step.
_XACT_BASE = 10**18


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class Row:
    seq: int
    type: str
    id: str
    org_id: str | None
    deleted: bool
    body: dict[str, Any]
    secret: str | None


@dataclass(frozen=True)
class KeyInfo:
    """Who an API key is: its user, the orgs it may act in, its api_key/service_token object."""

    key: str
    user_id: str
    org_ids: tuple[str, ...]
    object_id: str | None


_ROW_COLUMNS = "seq, type, id, org_id, deleted, body, secret"


def _row(record: tuple[Any, ...]) -> Row:
    seq, type_, id_, org_id, deleted, body, secret = record
    return Row(seq, type_, id_, org_id, bool(deleted), orjson.loads(body), secret)


class Tx:
    """Operations available inside one transaction (obtain via ``Store.transaction``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    # --- objects ----------------------------------------------------------------------------

    def insert(
        self,
        type_: str,
        org_id: str | None,
        body: dict[str, Any],
        *,
        ident: str | None,
        secret: str | None = None,
    ) -> Row:
        cur = self.execute(
            "INSERT INTO objects (type, id, org_id, ident, body, secret) VALUES (?, ?, ?, ?, ?, ?)",
            (type_, body["id"], org_id, ident, dumps(body), secret),
        )
        return Row(int(cur.lastrowid or 0), type_, body["id"], org_id, False, body, secret)

    def update(self, row: Row, body: dict[str, Any], *, ident: str | None, secret: str | None) -> Row:
        self.execute(
            "UPDATE objects SET body = ?, ident = ?, secret = ? WHERE id = ?",
            (dumps(body), ident, secret, row.id),
        )
        return Row(row.seq, row.type, row.id, row.org_id, row.deleted, body, secret)

    def mark_deleted(self, row: Row, body: dict[str, Any]) -> Row:
        self.execute("UPDATE objects SET deleted = 1, body = ? WHERE id = ?", (dumps(body), row.id))
        return Row(row.seq, row.type, row.id, row.org_id, True, body, row.secret)

    def get(
        self, id_: str, types: Iterable[str] | None = None, *, include_deleted: bool = False
    ) -> Row | None:
        sql = f"SELECT {_ROW_COLUMNS} FROM objects WHERE id = ?"
        params: list[Any] = [id_]
        if types is not None:
            types = list(types)
            sql += f" AND type IN ({','.join('?' * len(types))})"
            params += types
        if not include_deleted:
            sql += " AND deleted = 0"
        record = self.execute(sql, params).fetchone()
        return _row(record) if record else None

    def find_ident(self, type_: str, org_id: str | None, ident: str) -> Row | None:
        """The live object of ``type_`` in ``org_id`` whose identity key is ``ident``."""
        record = self.execute(
            f"SELECT {_ROW_COLUMNS} FROM objects WHERE type = ? AND ident = ? AND deleted = 0 "
            "AND org_id IS ? ORDER BY seq LIMIT 1",
            (type_, ident, org_id),
        ).fetchone()
        return _row(record) if record else None

    def find_ident_anywhere(self, type_: str, ident: str) -> Row | None:
        """Like :meth:`find_ident` across all orgs (org names are globally unique)."""
        record = self.execute(
            f"SELECT {_ROW_COLUMNS} FROM objects WHERE type = ? AND ident = ? AND deleted = 0 ORDER BY seq LIMIT 1",
            (type_, ident),
        ).fetchone()
        return _row(record) if record else None

    def seq_of(self, id_: str, types: Iterable[str]) -> int | None:
        types = list(types)
        record = self.execute(
            f"SELECT seq FROM objects WHERE id = ? AND type IN ({','.join('?' * len(types))})", [id_, *types]
        ).fetchone()
        return int(record[0]) if record else None

    def select(
        self,
        type_: str,
        *,
        org_ids: Sequence[str] | None,
        include_global: bool = False,
        where: Sequence[str] = (),
        params: Sequence[Any] = (),
        ids: Sequence[str] | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Live objects of one type, newest first.

        ``after_seq`` / ``before_seq`` implement ``starting_after`` / ``ending_before``:
        the page just older (resp. just newer) than the cursor, still returned newest first.
        ``where`` clauses may use ``json_extract(body, '$.field')``.
        """
        clauses = ["type = ?", "deleted = 0"]
        args: list[Any] = [type_]
        if org_ids is not None:
            scope = f"org_id IN ({','.join('?' * len(org_ids))})" if org_ids else "0"
            clauses.append(f"({scope} OR org_id IS NULL)" if include_global else scope)
            args += list(org_ids)
        if ids is not None:
            clauses.append(f"id IN ({','.join('?' * len(ids))})" if ids else "0")
            args += list(ids)
        clauses += list(where)
        args += list(params)
        order = "DESC"
        if after_seq is not None:
            clauses.append("seq < ?")
            args.append(after_seq)
        if before_seq is not None:
            clauses.append("seq > ?")
            args.append(before_seq)
            order = "ASC"  # take the rows nearest the cursor, then flip below
        sql = f"SELECT {_ROW_COLUMNS} FROM objects WHERE {' AND '.join(clauses)} ORDER BY seq {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = [_row(r) for r in self.execute(sql, args).fetchall()]
        return rows[::-1] if order == "ASC" else rows

    # --- versions ---------------------------------------------------------------------------

    def next_xact_id(self) -> str:
        """A new transaction id: numeric string, strictly increasing, persisted."""
        record = self.execute("SELECT value FROM counters WHERE name = 'xact'").fetchone()
        candidate = _XACT_BASE + int(time.time() * 1000) * 1000
        value = max(candidate, (record[0] + 1) if record else 0)
        self.execute(
            "INSERT INTO counters (name, value) VALUES ('xact', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (value,),
        )
        return str(value)

    def add_version(self, object_id: str, xact_id: str, body: dict[str, Any]) -> None:
        self.execute(
            "INSERT INTO object_versions (object_id, xact_id, body) VALUES (?, ?, ?)",
            (object_id, int(xact_id), dumps(body)),
        )

    def version_at(self, object_id: str, xact_id: int) -> dict[str, Any] | None:
        """The object as it was at transaction ``xact_id`` (latest version <= it)."""
        record = self.execute(
            "SELECT body FROM object_versions WHERE object_id = ? AND xact_id <= ? ORDER BY xact_id DESC LIMIT 1",
            (object_id, xact_id),
        ).fetchone()
        return orjson.loads(record[0]) if record else None

    # --- users and memberships --------------------------------------------------------------

    def add_member(self, org_id: str, user_id: str) -> bool:
        cur = self.execute(
            "INSERT OR IGNORE INTO memberships (org_id, user_id) VALUES (?, ?)", (org_id, user_id)
        )
        self.execute("INSERT OR IGNORE INTO known_users (org_id, user_id) VALUES (?, ?)", (org_id, user_id))
        return cur.rowcount > 0

    def knows_user(self, org_id: str, user_id: str) -> bool:
        """Whether the user is or was a member of the org."""
        return (
            self.execute(
                "SELECT 1 FROM known_users WHERE org_id = ? AND user_id = ?", (org_id, user_id)
            ).fetchone()
            is not None
        )

    def remove_member(self, org_id: str, user_id: str) -> bool:
        cur = self.execute("DELETE FROM memberships WHERE org_id = ? AND user_id = ?", (org_id, user_id))
        return cur.rowcount > 0

    def is_member(self, org_id: str, user_id: str) -> bool:
        return (
            self.execute(
                "SELECT 1 FROM memberships WHERE org_id = ? AND user_id = ?", (org_id, user_id)
            ).fetchone()
            is not None
        )

    def add_service_account(self, user_id: str, org_id: str) -> None:
        self.execute("INSERT INTO service_accounts (user_id, org_id) VALUES (?, ?)", (user_id, org_id))

    def is_service_account(self, user_id: str) -> bool:
        return (
            self.execute("SELECT 1 FROM service_accounts WHERE user_id = ?", (user_id,)).fetchone()
            is not None
        )

    # --- API keys ---------------------------------------------------------------------------

    def add_key(self, key: str, user_id: str, org_ids: Iterable[str], object_id: str | None) -> None:
        self.execute(
            "INSERT INTO api_keys (key, user_id, object_id) VALUES (?, ?, ?)", (key, user_id, object_id)
        )
        for org_id in org_ids:
            self.grant_key(key, org_id)

    def grant_key(self, key: str, org_id: str) -> None:
        self.execute("INSERT OR IGNORE INTO api_key_orgs (key, org_id) VALUES (?, ?)", (key, org_id))

    def key_exists(self, key: str) -> bool:
        return self.execute("SELECT 1 FROM api_keys WHERE key = ?", (key,)).fetchone() is not None

    def key_info(self, key: str) -> KeyInfo | None:
        record = self.execute("SELECT user_id, object_id FROM api_keys WHERE key = ?", (key,)).fetchone()
        if record is None:
            return None
        orgs = self.execute("SELECT org_id FROM api_key_orgs WHERE key = ? ORDER BY rowid", (key,)).fetchall()
        return KeyInfo(key, record[0], tuple(r[0] for r in orgs), record[1])

    def keys_of_org(self, org_id: str) -> list[str]:
        return [
            r[0]
            for r in self.execute("SELECT key FROM api_key_orgs WHERE org_id = ? ORDER BY rowid", (org_id,))
        ]

    def drop_keys_of_object(self, object_id: str) -> None:
        keys = [r[0] for r in self.execute("SELECT key FROM api_keys WHERE object_id = ?", (object_id,))]
        for key in keys:
            self.execute("DELETE FROM api_key_orgs WHERE key = ?", (key,))
            self.execute("DELETE FROM api_keys WHERE key = ?", (key,))


def _private_file(path: str) -> None:
    """The database holds every API key and secret: owner-only (0600), with its -wal / -shm files.

    Created 0600 before SQLite opens it (SQLite gives -wal / -shm the database's mode), and
    an existing file and its companions are narrowed too, whatever the umask.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # not ours: SQLite decides
            os.chmod(name, 0o600)


class Store:
    """The sandbox database. ``path`` is a file name or ``":memory:"``."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        in_memory = path == ":memory:" or path.startswith("file::memory:") or path == ""
        if not in_memory:
            _private_file(path)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if not in_memory:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            _private_file(path)  # -wal / -shm now exist
        self._tx = Tx(self._conn)
        self.add_schema(_SCHEMA)

    def add_schema(self, ddl: str) -> None:
        """Run idempotent DDL (``CREATE ... IF NOT EXISTS``); used by later parts for their tables."""
        with self._lock:
            self._conn.executescript(ddl)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One serialisable transaction; nested calls in the same thread join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._tx
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._tx
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()
