"""`braintrust-migrate migrate --follow` as a user runs it: --until-idle exits 0; SIGINT while
following is a planned stop (exit 0, the report says so); kill -9 while following, then the same
command again, leaves the destination exactly the source; --follow --dry-run is refused."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from braintrust_migrate.sandbox.testing import OrgPair
from tests.integration.engine.cli_run import cli_env, run, seed_small, start
from tests.integration.engine.test_follow import Writer, by_name, rows
from tests.oracle import compare_orgs

FOLLOW_ENV = {"MIGRATION_FOLLOW_INTERVAL": "0.2", "BRAINTRUST_MIGRATE_PROGRESS_INTERVAL": "0.2"}


def last_report(state_dir: Path) -> dict[str, Any]:
    path = max(state_dir.rglob("migration_report.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(path.read_text())


class Lines(threading.Thread):
    """stderr of a running CLI, read as it comes; `wait_for` a line containing some text."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream, self.lines = stream, []
        self.start()

    def run(self) -> None:
        for line in self.stream:
            self.lines.append(line)

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.lines) < count:
            assert time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.05)


def seeded_source(url: str, pair: OrgPair) -> dict[str, Any]:
    dataset = seed_small(url, pair.source, rows=20)
    return {"dataset": dataset, "project": {"id": dataset["project_id"]}}


def assert_exact(url: str, pair: OrgPair, dataset_id: str) -> None:
    src_rows = rows(url, pair.source, "dataset", dataset_id)
    dst_rows = rows(url, pair.dest, "dataset", by_name(url, pair.dest, "/v1/dataset", "state-d")["id"])
    assert len(dst_rows) == len({r["id"] for r in dst_rows}) == len(src_rows)
    compare_orgs(url, pair.source.api_key, pair.dest.api_key).assert_equal()


def test_until_idle_exits_zero(sandbox_server: Any, sandbox_orgs: OrgPair, tmp_path: Path) -> None:
    url = sandbox_server.url
    seed_small(url, sandbox_orgs.source, rows=20)
    env = cli_env(url, sandbox_orgs.source, sandbox_orgs.dest, tmp_path, **FOLLOW_ENV)
    done = run(env, "--follow", "--until-idle", "2")
    assert done.returncode == 0, done.stderr
    assert "follow: pass" in done.stderr  # the lag line per pass (not a terminal)
    follow = last_report(tmp_path)["follow"]
    assert follow["stopped_by"] == "idle" and follow["idle_s"] >= 2
    text = max(tmp_path.rglob("migration_summary.txt"), key=lambda p: p.stat().st_mtime).read_text()
    assert "stopped by idle" in text


def test_sigint_while_following_is_a_planned_stop(
    sandbox_server: Any, sandbox_orgs: OrgPair, tmp_path: Path
) -> None:
    url = sandbox_server.url
    seeded = seeded_source(url, sandbox_orgs)
    env = cli_env(url, sandbox_orgs.source, sandbox_orgs.dest, tmp_path, **FOLLOW_ENV)
    proc = start(env, "--follow")
    err = Lines(proc.stderr)
    writer = Writer(url, sandbox_orgs.source, seeded, seconds=1.5)
    writer.start()
    err.wait_for("follow: pass", count=3)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0, "".join(err.lines)
    writer.join()
    report = last_report(tmp_path)
    assert report["follow"]["stopped_by"] == "signal"
    assert report["complete"] is True and report["failed"] == 0


def test_kill_9_while_following_then_follow_again_is_exact(
    sandbox_server: Any, sandbox_orgs: OrgPair, tmp_path: Path
) -> None:
    url = sandbox_server.url
    seeded = seeded_source(url, sandbox_orgs)
    env = cli_env(url, sandbox_orgs.source, sandbox_orgs.dest, tmp_path, **FOLLOW_ENV)
    writer = Writer(url, sandbox_orgs.source, seeded, seconds=2.0)
    proc = start(env, "--follow")
    err = Lines(proc.stderr)
    writer.start()
    err.wait_for("follow: pass", count=4)
    proc.kill()
    proc.wait(timeout=30)
    writer.join()
    assert writer.error is None
    again = run(env, "--follow", "--until-idle", "0.5")
    assert again.returncode == 0, again.stderr
    assert_exact(url, sandbox_orgs, seeded["dataset"]["id"])


def test_follow_with_dry_run_is_refused(sandbox_server: Any, sandbox_orgs: OrgPair, tmp_path: Path) -> None:
    env = cli_env(sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest, tmp_path)
    done = run(env, "--follow", "--dry-run")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].count("--follow") == 1
    assert "Traceback" not in done.stderr
