"""`--state-dir` as root, pair folder or run folder; broken states; one writer; file modes.

Each case drives the installed CLI and judges by the sandbox's own write counter and
the files on disk.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.cli_run import SCRIPT, cli_env, dataset_row_count, run, seed_small, start


def pair_of(root: Path, source, dest) -> Path:
    return root / f"{source.id}__to__{dest.id}"


def assert_one_line_refusal(result, needle: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert needle in lines[0], lines[0]


@pytest.fixture
def migrated(sandbox_server, sandbox_orgs, tmp_path):
    """A source with one dataset, migrated once into the destination with the state root `root`."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed_small(url, src)
    root = tmp_path / "root"
    first = run(cli_env(url, src, dst, root))
    assert first.returncode == 0, first.stderr
    return url, src, dst, root


@pytest.mark.parametrize("where", ["pair", "run"])
def test_pair_or_run_folder_resolves_to_the_same_state(migrated, sandbox_server, where):
    url, src, dst, root = migrated
    pair = pair_of(root, src, dst)
    (run_folder,) = (pair / "runs").iterdir()
    given = pair if where == "pair" else run_folder
    writes = sandbox_server.write_count(dst.api_key)
    again = run(cli_env(url, src, dst, given))
    assert again.returncode == 0, again.stderr
    assert sandbox_server.write_count(dst.api_key) == writes  # nothing re-sent
    assert not pair_of(given, src, dst).exists()  # no state nested inside
    assert len(list((pair / "runs").iterdir())) == 2  # the re-run reported beside the first


def test_pair_folder_of_another_org_pair_is_refused(migrated, sandbox_server):
    url, src, dst, root = migrated
    other = sandbox_server.create_org(f"other-{time.time_ns()}")
    result = run(cli_env(url, src, other, pair_of(root, src, dst)))
    assert_one_line_refusal(result, dst.id)
    assert other.id in result.stderr
    assert sandbox_server.write_count(other.api_key) == 0


def _truncated(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE filler (x TEXT)")
    con.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(400)])
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _foreign(db: Path) -> None:
    db.unlink()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.commit()
    con.close()


def _newer(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.commit()
    con.close()


BREAKERS = {
    "truncated": (_truncated, "damaged"),
    "garbage": (lambda db: db.write_bytes(b"not a database at all " * 100), "not an SQLite database"),
    "empty": (lambda db: db.write_bytes(b""), "0 bytes"),
    "foreign": (_foreign, "another tool"),
    "newer": (_newer, "newer braintrust-migrate"),
}


@pytest.mark.parametrize("kind", list(BREAKERS))
def test_broken_state_file_is_refused_before_any_write(migrated, sandbox_server, kind):
    url, src, dst, root = migrated
    db = pair_of(root, src, dst) / "state.db"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    breaker, needle = BREAKERS[kind]
    breaker(db)
    before = db.read_bytes()
    writes = sandbox_server.write_count(dst.api_key), sandbox_server.write_count(src.api_key)
    result = run(cli_env(url, src, dst, root))
    assert_one_line_refusal(result, str(db))
    assert needle in result.stderr and "--fresh" in result.stderr
    assert (sandbox_server.write_count(dst.api_key), sandbox_server.write_count(src.api_key)) == writes
    assert db.read_bytes() == before


def test_fresh_moves_a_broken_state_aside_and_starts_anew(migrated, sandbox_server):
    url, src, dst, root = migrated
    pair = pair_of(root, src, dst)
    db = pair / "state.db"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    junk = b"garbage " * 64
    db.write_bytes(junk)
    result = run(cli_env(url, src, dst, root), "--fresh")
    assert result.returncode == 0, result.stderr
    (aside,) = pair.glob("state.db.aside-*")
    assert aside.read_bytes() == junk  # kept, never deleted
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key = 'tool'").fetchone() == ("braintrust-migrate",)
    con.close()


def test_state_dir_that_is_a_file(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed_small(url, src, rows=2)
    target = tmp_path / "a-file"
    target.write_text("x")
    result = run(cli_env(url, src, dst, target))
    assert_one_line_refusal(result, str(target))
    assert sandbox_server.write_count(dst.api_key) == 0


def test_state_dir_that_cannot_be_created(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed_small(url, src, rows=2)
    (tmp_path / "plain").write_text("x")
    target = tmp_path / "plain" / "state"  # under a regular file: no user can create it
    result = run(cli_env(url, src, dst, target))
    assert_one_line_refusal(result, "cannot create the state folder")
    assert sandbox_server.write_count(dst.api_key) == 0


def test_same_key_on_both_sides_is_refused(sandbox_server, sandbox_orgs, tmp_path):
    url, src = sandbox_server.url, sandbox_orgs.source
    seed_small(url, src, rows=2)
    writes = sandbox_server.write_count(src.api_key)
    root = tmp_path / "state"
    result = run(cli_env(url, src, src, root))
    assert_one_line_refusal(result, "both act in org")
    assert sandbox_server.write_count(src.api_key) == writes
    assert not root.exists()


def test_second_migrate_on_the_same_state_is_refused_and_a_killed_holder_frees_it(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed_small(url, src, rows=200)
    root = tmp_path / "state"
    env = cli_env(url, src, dst, root, MIGRATION_INSERT_BATCH_ROWS="5")
    # Slow enough that the first run still holds the lock however long the second takes to start
    # (a loaded machine): it is killed, never left to finish.
    sandbox_server.set_faults(FaultSettings(latency_ms=3000, methods=("POST",)), org=dst.name)
    try:
        first = start(env)
        lock = pair_of(root, src, dst) / "state.lock"
        wal = lock.with_name("state.db-wal")
        deadline = time.monotonic() + 30
        while not (lock.exists() and lock.read_bytes() and wal.exists()) and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert first.poll() is None, first.communicate()
        assert stat.S_IMODE(os.stat(wal).st_mode) == 0o600  # SQLite's own files are private too
        second = run(env)
        assert_one_line_refusal(second, f"pid {first.pid}")
        assert "started" in second.stderr
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    finally:
        sandbox_server.clear_faults()
    third = run(env)  # the kernel dropped the killed holder's lock
    assert third.returncode == 0, third.stderr


def test_everything_in_the_state_dir_is_private(migrated):
    _, src, dst, root = migrated
    pair = pair_of(root, src, dst)
    made = [root, pair, *pair.rglob("*")]
    assert any(p.name == "state.db" for p in made) and any(p.name == "migration_report.json" for p in made)
    for path in made:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_verify_and_validate_create_their_folders_private(migrated, tmp_path):
    url, src, dst, root = migrated
    env = cli_env(url, src, dst, root)
    done = subprocess.run([SCRIPT, "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    reports = list(pair_of(root, src, dst).rglob("verify_report.json"))
    assert reports
    for path in reports[0].parents:
        if path == root.parent:
            break
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    fresh_root = tmp_path / "new" / "state"
    env = cli_env(url, src, dst, fresh_root)
    done = subprocess.run([SCRIPT, "validate"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in (fresh_root, fresh_root.parent):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path


# Dies the way the CI's kill -9 caught it: after the state file's creation, before SQLite's first write.
KILLED_WHILE_CREATING = """
import os, signal, sqlite3, sys
from pathlib import Path
from braintrust_migrate.engine import state

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

state.sqlite3.connect = die
state.StateStore(Path(sys.argv[1]))
"""


def test_a_run_killed_while_creating_its_state_is_followed_by_a_working_run(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed_small(url, src)
    root = tmp_path / "root"
    db = pair_of(root, src, dst) / "state.db"
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_CREATING, str(db)], timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert not db.exists() or db.stat().st_size > 0  # never an empty state.db, which is refused
    result = run(cli_env(url, src, dst, root))
    assert result.returncode == 0, result.stderr
    assert dataset_row_count(url, dst) == 20
    assert not list(db.parent.glob("state.db.new*"))  # the killed creation's leftover is gone
