"""Scale-out: one org pair's event containers split over N processes with no coordinator.

1. `migrate --shard objects` (once): every object phase that does not need rows; no rows.
2. `migrate --shard I/N` (N processes, any order, any machines sharing the state folder): the rows
   of the containers whose stable hash of (stream kind, source id) mod N is I. No objects are
   written. Its checkpoints live in `<pair>/shards/I-of-N/state.db` under its own lock; the pair's
   state.db is only read (its id map copied in at start) under a shared lock, so the shards never
   contend on one SQLite writer and an exclusive run of the pair cannot start beside them.
3. `migrate` (once, plain): folds the shards' checkpoints into the pair's state, reads only what
   changed since, and writes what needs the rows: pinned dataset versions on the experiments that
   pin them (repins) and dataset snapshots. The translations of pins are in the dataset owner's
   shard state, so they are written exactly once, by the one process that sees every shard.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from braintrust_migrate.config import SHARD_OBJECTS, ConfigError
from braintrust_migrate.engine.context import Options, RunContext
from braintrust_migrate.engine.events.state import EventState
from braintrust_migrate.engine.events.stream import StreamSpec
from braintrust_migrate.engine.events.versions import PinLog
from braintrust_migrate.engine.private import make_dirs
from braintrust_migrate.engine.state import STATE_FILE, StateStore
from braintrust_migrate.engine.statedir import StateDirError, StateLock
from braintrust_migrate.engine.steps import Step
from braintrust_migrate.liblog import get_logger

log = get_logger(__name__)

SHARDS_DIR = "shards"
# Meta key of the pair's state: the last run whose object phase finished (a plain or objects run).
OBJECTS_FINISHED = "objects_phase_finished"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @property
    def folder_name(self) -> str:
        return f"{self.index}-of-{self.count}"

    def owns(self, kind: str, src_id: str) -> bool:
        return shard_index(kind, src_id, self.count) == self.index

    def keeps(self, spec: StreamSpec) -> bool:
        return self.owns(spec.kind, spec.src_id)


def shard_index(kind: str, src_id: str, count: int) -> int:
    """Stable over processes, machines and Python versions (unlike hash())."""
    digest = hashlib.sha256(f"{kind}\0{src_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


Mode = Shard | str | None  # a shard, "objects", or None (a plain run)


def mode_of(value: str | None) -> Mode:
    if value is None or value == SHARD_OBJECTS:
        return value
    index, count = value.split("/")
    return Shard(int(index), int(count))


def check_options(mode: Mode, options: Options) -> None:
    if mode is None:
        return
    for given, flag in ((options.follow, "--follow"), (options.sync_deletes, "--sync-deletes")):
        if given:
            raise ConfigError(f"--shard cannot be combined with {flag}: run it in the plain `migrate` after")
    if options.dry_run:
        raise ConfigError("--shard cannot be combined with --dry-run: a plain `migrate --dry-run` plans all")


def prune(graph: dict[Step, set[Step]], mode: Mode) -> dict[Step, set[Step]]:
    """The steps a sharded run takes: a shard only row steps; `objects` every step not after rows."""
    if mode is None:
        return graph
    if isinstance(mode, Shard):
        return {step: set() for step in graph if step.stream is not None}
    after_rows: set[Step] = {step for step in graph if step.stream is not None or step.repin is not None}
    grew = True
    while grew:  # everything waiting (transitively) for rows waits for step 3
        more = {step for step, deps in graph.items() if deps & after_rows} - after_rows
        after_rows |= more
        grew = bool(more)
    return {step: deps - after_rows for step, deps in graph.items() if step not in after_rows}


def open_shard(pair: Path, shard: Shard) -> tuple[StateLock, Path]:
    """The shared lock on the pair and the shard's folder, once the object phase has finished."""
    pair_lock = StateLock(pair, shared=True)
    pair_lock.acquire()
    try:
        finished = _objects_finished(pair / STATE_FILE)
        if not finished:
            raise StateDirError(
                f"--shard {shard.index}/{shard.count}: the state in {str(pair)!r} records no finished"
                " object phase; run `braintrust-migrate migrate --shard objects` first"
            )
        folder = pair / SHARDS_DIR / shard.folder_name
        make_dirs(folder)
    except BaseException:
        pair_lock.release()
        raise
    return pair_lock, folder


def _objects_finished(db: Path) -> str | None:
    if not db.is_file():
        return None
    with contextlib.suppress(sqlite3.Error):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = ?", (OBJECTS_FINISHED,)).fetchone()
        finally:
            con.close()
        return row[0] if row else None
    return None


def copy_id_map(pair: Path, state: StateStore) -> None:
    """The pair's id map and version map, read into the shard's own state (read only there)."""
    db = state._db
    db.execute("ATTACH DATABASE ? AS pair", (str(pair / STATE_FILE),))  # only read
    try:
        with db:
            db.execute("BEGIN")
            for table in ("id_map", "xact_map"):
                db.execute(f"DELETE FROM main.{table}")
                db.execute(f"INSERT INTO main.{table} SELECT * FROM pair.{table}")
    finally:
        db.execute("DETACH DATABASE pair")


def known_from_state(ctx: RunContext) -> None:
    """A shard writes no objects: every object of the run is as the object phase left it, and
    settled now (nothing waits for a write that will not come)."""
    for key, node in ctx.nodes.items():
        mapping = ctx.state.mapping(*key)
        found = None
        if mapping and mapping.dest_id and ctx._dest_exists(node.rt.kind, mapping.dest_id):
            ctx.known[key] = found = mapping.dest_id
        if node.done is not None and not node.done.done():
            node.done.set_result(found)


# Tables copied per stream taken from a shard (its record is newer than the pair's).
_PER_STREAM = ("stream_failures", "fetch_seen")
_KEPT = ("copied_rows", "copied_batches", "copied_comments", "copied_attachments")  # sets: union


def fold(pair: Path, state: StateStore) -> list[str]:
    """Every shard's checkpoints into the pair's state (newer per stream wins); the shards folded."""
    folded = []
    EventState(state)  # the tables exist in the pair's state
    PinLog(state._db)
    for shard_db in sorted((pair / SHARDS_DIR).glob(f"*/{STATE_FILE}")):
        lock = StateLock(shard_db.parent, what="shard state")
        lock.acquire()  # a shard still running: refused, the pair waits for it
        try:
            _fold_one(state._db, shard_db)
        finally:
            lock.release()
        folded.append(shard_db.parent.name)
    if folded:
        log.info("shard checkpoints folded into the pair's state", shards=folded)
    return folded


def _fold_one(db: sqlite3.Connection, shard_db: Path) -> None:
    db.execute("ATTACH DATABASE ? AS shard", (str(shard_db),))  # only read
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM shard.sqlite_master WHERE type = 'table'")}
        if "streams" not in tables:
            return
        with db:
            db.execute("BEGIN")
            db.execute("DROP TABLE IF EXISTS temp.taken")
            db.execute(
                "CREATE TEMP TABLE taken AS SELECT s.stream, s.kind, s.src_id FROM shard.streams s"
                " LEFT JOIN main.streams m ON m.stream = s.stream"
                " WHERE m.stream IS NULL OR s.updated_at > m.updated_at"
            )
            db.execute(
                "INSERT OR REPLACE INTO main.streams SELECT * FROM shard.streams"
                " WHERE stream IN (SELECT stream FROM temp.taken)"
            )
            for table in _PER_STREAM:
                if table in tables:
                    db.execute(f"DELETE FROM main.{table} WHERE stream IN (SELECT stream FROM temp.taken)")
                    db.execute(
                        f"INSERT OR IGNORE INTO main.{table} SELECT * FROM shard.{table}"
                        " WHERE stream IN (SELECT stream FROM temp.taken)"
                    )
            for table in _KEPT:
                if table in tables:
                    db.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM shard.{table}")
            datasets = "SELECT src_id FROM temp.taken WHERE kind = 'dataset'"
            for table in ("dataset_pins", "dataset_pin_position"):
                if table in tables:
                    db.execute(f"DELETE FROM main.{table} WHERE src_dataset IN ({datasets})")
                    db.execute(
                        f"INSERT INTO main.{table} SELECT * FROM shard.{table} WHERE src_dataset IN ({datasets})"
                    )
            db.execute(
                "INSERT OR REPLACE INTO main.xact_map SELECT * FROM shard.xact_map"
                f" WHERE kind = 'dataset' AND src_id IN ({datasets})"
            )
            db.execute("DROP TABLE temp.taken")
    finally:
        db.execute("DETACH DATABASE shard")
