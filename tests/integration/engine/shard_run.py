"""Running a sharded migration as separate CLI processes (objects once, N shards at once, the
finishing plain run), and reading what each shard reported."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson

from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from tests.integration.engine import cli_run


def pair(state: Path, src: SandboxOrg, dst: SandboxOrg) -> Path:
    return state / f"{src.id}__to__{dst.id}"


def shard_reports(
    state: Path, src: SandboxOrg, dst: SandboxOrg, count: int
) -> dict[int, list[dict[str, Any]]]:
    """Every report each shard wrote (one per run), by shard index."""
    found = {}
    for index in range(count):
        runs = pair(state, src, dst) / "shards" / f"{index}-of-{count}" / "runs"
        found[index] = [orjson.loads(p.read_bytes()) for p in sorted(runs.glob("*/migration_report.json"))]
    return found


MAP_USERS = "--map-users"  # both orgs have the same members: every user reference maps


def run_ok(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = cli_run.run(env, "--map-users", *args)
    assert done.returncode == 0, (args, done.stderr[-3000:])
    return done


def shards_in_parallel(env: dict[str, str], count: int) -> None:
    procs = [cli_run.start(env, "--map-users", "--shard", f"{i}/{count}") for i in range(count)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
