"""`kill -9` of the migrate process at random moments, then a plain re-run: the
destination ends exactly as after an uninterrupted run, nothing duplicated."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from braintrust_migrate.engine.inventory import identity
from braintrust_migrate.engine.resources import BY_NAME
from tests.integration.engine.harness import list_all, migrate, seed, snapshot
from tests.oracle import compare_orgs

BUILTIN_GROUPS = {"Owners", "Engineers", "Viewers"}
SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Transaction ids differ between orgs; only whether one is pinned can be compared.
VERSIONS = {"version", "prompt_version", "parameters_version", "dataset_version", "xact_id"}
VOLATILE = {
    "id",
    "created",
    "_xact_id",
    "user_id",
    "org_id",
    "url_slug",
    "position",
    "updated_at",
    "_object_org_id",
}


def canonical(data: dict[str, list[dict[str, Any]]], users: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each org's objects with ids replaced by names, so two orgs can be compared."""
    labels: dict[str, str] = {}
    for name, objects in data.items():
        for obj in objects:
            labels[obj["id"]] = f"{name}:{obj.get('name') or obj.get('slug')}"
    for user in users:
        labels[user["id"]] = f"user:{user['email']}"

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: ("<xact>" if k in VERSIONS and v else clean(v))
                for k, v in sorted(value.items())
                if k not in VOLATILE
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            return UUID.sub(lambda m: labels.get(m.group(0), "?"), value)
        return value

    out: dict[str, list[str]] = {}
    for name, objects in data.items():
        # The built-in groups pre-exist in every org (their membership is the org's own).
        rows = [
            repr(clean(obj)) for obj in objects if not (name == "groups" and obj["name"] in BUILTIN_GROUPS)
        ]
        out[name] = sorted(rows)
    return out


def duplicates(data: dict[str, list[dict[str, Any]]]) -> list[tuple[Any, ...]]:
    dupes = []
    for name, objects in data.items():
        if name == "acls":
            continue
        rt = BY_NAME[name]
        keys = [identity(rt, obj) for obj in objects]
        dupes += [key for key in set(keys) if keys.count(key) > 1]
    return dupes


def run_cli(url: str, source, dest, state_dir: Path, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "BT_SOURCE_URL": url,
        "BT_DEST_URL": url,
        "BT_SOURCE_API_KEY": source.api_key,
        "BT_DEST_API_KEY": dest.api_key,
        "MIGRATION_STATE_DIR": str(state_dir),
        "MIGRATION_MAX_CONCURRENT_REQUESTS": "4",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [SCRIPT, "migrate", "--map-users", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@pytest.mark.parametrize("seed_value", [1, 2, 3])
async def test_kill_at_random_moments_then_resume(sandbox_server, sandbox_orgs, tmp_path, seed_value):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    # The reference destination has the same members, so user mapping gives the same result.
    emails = [u["email"] for u in list_all(url, dst, "/v1/user")]
    reference_dest = sandbox_server.create_org(f"reference-{seed_value}-{time.time_ns()}", users=emails)
    await migrate(url, src, reference_dest, tmp_path / "reference", map_users=True)

    rng = random.Random(seed_value)
    state = tmp_path / "state"
    kills = 0
    for _ in range(3):
        proc = run_cli(url, src, dst, state)
        time.sleep(rng.uniform(0.3, 1.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 1, "the migration finished before any kill: nothing was tested"
    final = run_cli(url, src, dst, state)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()[-2000:]

    compare_orgs(url, src.api_key, dst.api_key).assert_equal()  # the independent oracle
    got, expected = snapshot(url, dst), snapshot(url, reference_dest)
    assert duplicates(got) == []
    got_c = canonical(got, list_all(url, dst, "/v1/user"))
    expected_c = canonical(expected, list_all(url, reference_dest, "/v1/user"))
    for name in expected_c:
        if name == "acls":
            assert len(got[name]) == len(expected[name])
            continue
        # Built-in groups differ by membership between orgs; everything we wrote must match.
        assert got_c[name] == expected_c[name], name
