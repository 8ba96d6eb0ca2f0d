"""Where a run's state lives, whether it is usable, and who may write it.

`--state-dir` may name the state root, a pair folder (`<root>/<src>__to__<dst>`, holding
`state.db`) or a run folder (`<pair>/runs/<run id>`): all three resolve to the same
state, never to a new one nested inside. A broken state file is refused in one line
before anything is written to either org; one process at a time holds a state (flock:
the kernel drops it when the holder dies, so a killed run never leaves it stuck).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from braintrust_migrate.config import ConfigError
from braintrust_migrate.engine.private import FILE_MODE, make_dirs
from braintrust_migrate.engine.state import SCHEMA_VERSION, STATE_FILE, TOOL_MARKER, pair_folder
from braintrust_migrate.liblog import get_logger

SQLITE_HEADER = b"SQLite format 3\x00"
LOCK_FILE = "state.lock"
# Tables every state of ours has had, marker or not (states written before the marker existed).
LEGACY_TABLES = {"meta", "id_map", "runs", "outcomes"}

log = get_logger(__name__)


class StateDirError(ConfigError):
    """A state folder or file that cannot be used; one line, exit code 2."""


@dataclass(frozen=True)
class StateLocation:
    folder: Path  # the pair folder holding state.db
    run_id: str | None = None  # the run a run folder named


def _pair_ids(folder: Path) -> tuple[str, str] | None:
    """The org ids a pair folder's state was made for: from its meta, else from its name."""
    db = folder / STATE_FILE
    with contextlib.suppress(sqlite3.Error, OSError):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = dict(
                con.execute("SELECT key, value FROM meta WHERE key IN ('source_org_id', 'dest_org_id')")
            )
        finally:
            con.close()
        if "source_org_id" in rows and "dest_org_id" in rows:
            return rows["source_org_id"], rows["dest_org_id"]
    src, sep, dst = folder.name.partition("__to__")
    return (src, dst) if sep else None


def _check_pair(folder: Path, given: Path, source_org: dict[str, Any], dest_org: dict[str, Any]) -> None:
    ids = _pair_ids(folder)
    wanted = (source_org["id"], dest_org["id"])
    if ids == wanted or (ids is None and folder.name == pair_folder(folder.parent, *wanted).name):
        return
    held = f"{ids[0]} -> {ids[1]}" if ids else f"the folder {folder.name!r}"
    raise StateDirError(
        f"--state-dir {str(given)!r} holds the state of org pair {held}, not of this run's"
        f" {source_org.get('name')!r} ({source_org['id']}) -> {dest_org.get('name')!r} ({dest_org['id']}):"
        " pass the state root that holds the pair folders, or another folder"
    )


def resolve_state_dir(state_dir: Path, source_org: dict[str, Any], dest_org: dict[str, Any]) -> StateLocation:
    """The pair folder (and run) that `--state-dir` means for this org pair."""
    given = state_dir
    if state_dir.exists() and not state_dir.is_dir():
        raise StateDirError(
            f"MIGRATION_STATE_DIR={str(given)!r} is a file, not a folder: pass a folder with --state-dir"
        )
    run_id = None
    if (state_dir / "migration_report.json").is_file() and state_dir.parent.name == "runs":
        if (state_dir.parent.parent / STATE_FILE).exists():
            run_id, state_dir = state_dir.name, state_dir.parent.parent
    elif state_dir.name == "runs" and (state_dir.parent / STATE_FILE).exists():
        state_dir = state_dir.parent
    if (state_dir / STATE_FILE).exists():
        _check_pair(state_dir, given, source_org, dest_org)
        return StateLocation(state_dir, run_id)
    return StateLocation(pair_folder(state_dir, source_org["id"], dest_org["id"]))


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and missing parents as 0700 (whatever the umask); existing ones are left alone."""
    try:
        make_dirs(folder)
    except OSError as error:
        raise StateDirError(
            f"cannot create the state folder {str(folder)!r}: {error.strerror or error};"
            " pass a writable folder with --state-dir"
        ) from None


def state_problem(db: Path) -> str | None:
    """Why `db` is not a usable state of ours (None: usable, or absent)."""
    if not db.exists():
        return None
    if not db.is_file():
        return "is not a file"
    try:
        with db.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not header:
        return "is empty (0 bytes)"
    if header != SQLITE_HEADER:
        return "is not an SQLite database"
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            if con.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return "is damaged (SQLite integrity check failed)"
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            meta = dict(con.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        finally:
            con.close()
    except sqlite3.Error as error:
        return f"is damaged ({error})"
    if not tables:  # a database made but killed before its first table: nothing in it to lose
        return None
    if meta.get("tool", TOOL_MARKER) != TOOL_MARKER or not tables >= LEGACY_TABLES:
        return "is an SQLite file of another tool, not a braintrust-migrate state"
    version = meta.get("schema_version", "1")
    if not version.isdigit() or int(version) > SCHEMA_VERSION:
        return (
            f"was written by a newer braintrust-migrate (state schema {version}; this version reads"
            f" up to {SCHEMA_VERSION}): upgrade braintrust-migrate"
        )
    return None


def set_aside(db: Path) -> Path:
    """Rename a state file (and its WAL companions) aside; never delete it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = db.with_name(f"{db.name}.aside-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = db.with_name(f"{db.name}.aside-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        companion = db.with_name(db.name + suffix)
        if companion.exists():
            os.replace(companion, target.with_name(target.name + suffix))
    os.replace(db, target)
    return target


def check_state_file(db: Path, *, fresh: bool) -> Path | None:
    """Refuse a broken state in one line; with --fresh, move it aside (returned) and start anew."""
    problem = state_problem(db)
    if problem is None:
        return None
    if fresh:
        return set_aside(db)
    raise StateDirError(
        f"the state file {str(db)!r} {problem}; move it aside (or re-run with --fresh, which renames it"
        " and starts a new state)"
    )


class StateLock:
    """One writer per state: an exclusive flock on `state.lock` beside state.db."""

    def __init__(
        self, folder: Path, *, what: str = "state", flag: str = "--state-dir", shared: bool = False
    ) -> None:
        self.path = folder / LOCK_FILE
        self.what, self.flag = what, flag  # how messages name the folder, and the flag choosing it
        self.shared = shared  # --shard I/N: many readers of the pair's state, no writer beside them
        self._handle: IO[bytes] | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as error:
            raise StateDirError(
                f"cannot write in the {self.what} folder {str(self.path.parent)!r}: {error.strerror or error};"
                f" pass a writable folder with {self.flag}"
            ) from None
        os.fchmod(fd, FILE_MODE)
        handle = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise StateDirError(
                f"another braintrust-migrate ({holder}) is using the {self.what} in {str(self.path.parent)!r};"
                " wait for it to finish or stop it, then re-run"
            ) from None
        if self.shared:  # the holder's line belongs to exclusive holders
            self._handle = handle
            return
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        handle.seek(0)
        handle.truncate()
        handle.write(orjson.dumps(info))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            if not self.shared:
                with contextlib.suppress(OSError):
                    self._handle.truncate(0)
            self._handle.close()  # closing drops the flock
            self._handle = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _holder(handle: IO[bytes]) -> str:
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        handle.seek(0)
        info = orjson.loads(handle.read() or b"{}")
        if isinstance(info, dict) and info.get("pid"):
            return f"pid {info['pid']} on host {info.get('host')}, started {info.get('started')}"
    return "pid unknown: it is just starting, or `--shard I/N` processes are running"


def sibling_dest_ids(folder: Path) -> set[str] | None:
    """Destination ids the other pairs into the same destination map (`<root>/*__to__<dest>`),
    read without their locks (what they copied is theirs); None when one cannot be read."""
    if "__to__" not in folder.name:
        return set()
    dest = folder.name.split("__to__", 1)[1]
    found: set[str] = set()
    for other in sorted(folder.parent.glob(f"*__to__{dest}")):
        path = other / STATE_FILE
        if other.resolve() == folder.resolve() or not path.is_file():
            continue
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                found |= {row[0] for row in db.execute("SELECT dest_id FROM id_map WHERE dest_id != ''")}
            finally:
                db.close()
        except sqlite3.Error as error:
            log.warning("another pair's state could not be read", state=str(path), error=str(error))
            return None
    return found
