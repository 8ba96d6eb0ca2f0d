"""The installed console script: help, version, one-line user errors, log levels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from braintrust_migrate import __version__
from braintrust_migrate.config import Settings

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if k.upper() not in {n.upper() for n in Settings.model_fields}
    }
    base.update(env or {})
    base["COLUMNS"] = "200"
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=base, cwd=cwd, timeout=60)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_version(workdir: Path) -> None:
    out = run("--version", cwd=workdir)
    assert out.returncode == 0
    assert out.stdout.strip() == f"braintrust-migrate {__version__}"


@pytest.mark.parametrize("command", [[], ["validate"], ["sandbox"], ["sandbox", "serve"]])
def test_help_on_every_command(workdir: Path, command: list[str]) -> None:
    out = run(*command, "--help", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout


def test_validate_help_lists_every_setting_flag(workdir: Path) -> None:
    out = run("validate", "--help", cwd=workdir)
    for flag in ("--source-url", "--dest-url", "--max-concurrent-requests", "--retry-attempts", "--config"):
        assert flag in out.stdout


def test_missing_key_is_one_line_exit_2(workdir: Path) -> None:
    out = run("validate", cwd=workdir)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "BT_SOURCE_API_KEY is not set" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_flag_value_is_one_line_exit_2(workdir: Path) -> None:
    out = run("validate", "--max-concurrent-requests", "0", cwd=workdir)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "error: invalid MIGRATION_MAX_CONCURRENT_REQUESTS (--max-concurrent-requests)=0: "
        "Input should be greater than or equal to 1; allowed: an integer from 1 to 512"
    )


def test_unknown_config_key_exit_2(workdir: Path) -> None:
    (workdir / "c.yaml").write_text("BT_SORCE_URL: http://x\n")
    out = run("validate", "--config", "c.yaml", cwd=workdir)
    assert out.returncode == 2
    assert "unknown setting 'BT_SORCE_URL'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


KEYS = {"BT_SOURCE_API_KEY": "sk-source-secret-0001", "BT_DEST_API_KEY": "sk-dest-secret-0002"}


def test_unreachable_url_json_and_no_secret(workdir: Path) -> None:
    env = {**KEYS, "BT_SOURCE_URL": "http://127.0.0.1:9", "BT_DEST_URL": "http://127.0.0.1:9"}
    out = run("validate", "--json", "--retry-attempts", "0", env=env, cwd=workdir)
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert result["ok"] is False
    reach = [c for c in result["checks"] if c["name"] == "reachable"]
    assert {c["side"] for c in reach} == {"source", "dest"}
    assert all("could not reach" in c["detail"] and "127.0.0.1:9" in c["detail"] for c in reach)
    for secret in KEYS.values():
        assert secret not in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("level", "debug_seen", "info_seen"),
    [("DEBUG", True, True), ("INFO", False, True), ("WARNING", False, False)],
)
def test_log_level_is_honoured(workdir: Path, level: str, debug_seen: bool, info_seen: bool) -> None:
    env = {
        **KEYS,
        "BT_SOURCE_URL": "http://127.0.0.1:9",
        "BT_DEST_URL": "http://127.0.0.1:9",
        "LOG_LEVEL": level,
    }
    out = run("validate", "--retry-attempts", "1", "--retry-delay", "0", env=env, cwd=workdir)
    assert ("retrying request" in out.stderr) is debug_seen
    assert ("validation finished" in out.stderr) is info_seen
    assert "retrying request" not in out.stdout


def test_json_log_format(workdir: Path) -> None:
    env = {**KEYS, "BT_SOURCE_URL": "http://127.0.0.1:9", "BT_DEST_URL": "http://127.0.0.1:9"}
    out = run("validate", "--log-format", "json", "--retry-attempts", "0", env=env, cwd=workdir)
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert any(line["event"] == "validation finished" and line["level"] == "info" for line in lines)


def test_dotenv_in_working_directory_is_read(workdir: Path) -> None:
    (workdir / ".env").write_text("BT_SOURCE_API_KEY=sk-from-dotenv-1234\n")
    out = run("validate", cwd=workdir)
    assert out.returncode == 2
    assert "BT_DEST_API_KEY is not set" in out.stderr  # the source key came from .env


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--resources", "datasets,bogus"], "unknown resource type 'bogus'"),
        (["--secrets-file", "missing.yaml"], "--secrets-file missing.yaml: cannot read the file"),
        (["--invite-users"], "--invite-users needs --map-users"),
    ],
)
def test_migrate_bad_input_is_one_line_exit_2(workdir: Path, args: list[str], expected: str) -> None:
    out = run("migrate", *args, env=KEYS, cwd=workdir)
    assert out.returncode == 2, out.stderr
    assert expected in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
