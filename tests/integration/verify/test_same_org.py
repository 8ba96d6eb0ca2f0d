"""`verify` and `validate` with both keys acting in one org: refused with exit 2 and one
line, before anything is written (no state folder, no report, no request that writes)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from braintrust_migrate.sandbox.objects import admin

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))
COMMANDS = [["verify"], ["validate", "--write-check"], ["validate", "--json"]]


def run(url: str, source_key: str, dest_key: str, tmp_path: Path, args: list[str]):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BT_", "MIGRATION_", "LOG_"))}
    environ.update(BT_SOURCE_URL=url, BT_DEST_URL=url, BT_SOURCE_API_KEY=source_key, BT_DEST_API_KEY=dest_key)
    return subprocess.run(
        [SCRIPT, *args, "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
    )


def assert_refused(out: subprocess.CompletedProcess, org_name: str, keys: list[str]) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and f"both act in org {org_name!r}" in lines[0]
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert not any(key in out.stderr for key in keys)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_one_key_on_both_sides_is_refused(sandbox_server, sandbox_org, tmp_path, args):
    key = sandbox_org.api_key
    before = sandbox_server.write_count(key)
    assert_refused(run(sandbox_server.url, key, key, tmp_path, args), sandbox_org.name, [key])
    assert sandbox_server.write_count(key) == before
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_two_keys_of_one_org_are_refused(sandbox_server, sandbox_org, tmp_path, args):
    second = "sk-" + secrets.token_urlsafe(30)
    admin.add_org_key(sandbox_server.store, sandbox_org.name, second)
    first = sandbox_org.api_key
    counts = sandbox_server.write_count(first), sandbox_server.write_count(second)
    assert_refused(run(sandbox_server.url, first, second, tmp_path, args), sandbox_org.name, [first, second])
    assert (sandbox_server.write_count(first), sandbox_server.write_count(second)) == counts
    assert not (tmp_path / "state").exists()


def test_two_orgs_pass(sandbox_server, sandbox_orgs, tmp_path):
    # The control: the refusal is about one org on both sides, not about sharing a server.
    out = run(
        sandbox_server.url, sandbox_orgs.source.api_key, sandbox_orgs.dest.api_key, tmp_path, ["validate"]
    )
    assert out.returncode == 0, out.stdout + out.stderr
