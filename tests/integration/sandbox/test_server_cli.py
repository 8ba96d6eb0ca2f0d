"""SandboxServer lifecycle and the ``sandbox serve`` command."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from braintrust_migrate.sandbox.cli import app
from braintrust_migrate.sandbox.server import SandboxServer

runner = CliRunner()


def test_port_zero_picks_a_port_and_a_taken_port_fails(tmp_path: Path) -> None:
    with SandboxServer() as first:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", first.url)
        assert httpx.get(first.url + "/v1").text == "Hello, World!"
        second = SandboxServer(port=first.port)
        with pytest.raises(OSError):
            second.start()
        second.close()


def test_file_database_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "sandbox.db")
    with SandboxServer(db) as server:
        org = server.create_org("persisted", api_key="sk-persisted-key")
        made = httpx.post(
            server.url + "/v1/project",
            json={"name": "kept"},
            headers={"Authorization": "Bearer sk-persisted-key"},
        )
        assert made.status_code == 200
    with SandboxServer(db) as server:
        assert [o.name for o in server.orgs()] == ["persisted"]
        listed = httpx.get(
            server.url + "/v1/project", headers={"Authorization": f"Bearer {org.api_key}"}
        ).json()
        assert [p["id"] for p in listed["objects"]] == [made.json()["id"]]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--org", "=key"], "--org expects NAME or NAME=KEY"),
        (["--org", "name="], "--org expects NAME or NAME=KEY"),
        (["--orgs-file", "/nonexistent/orgs.yaml"], "cannot read --orgs-file"),
        (["--port", "70000"], "--port must be between"),
    ],
)
def test_serve_rejects_bad_arguments(args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_serve_rejects_a_bad_orgs_file(tmp_path: Path) -> None:
    bad = tmp_path / "orgs.yaml"
    bad.write_text("orgs:\n  - api_key: no-name\n")
    result = runner.invoke(app, ["serve", "--orgs-file", str(bad)])
    assert result.exit_code == 2 and "'name'" in result.output


def test_serve_reports_a_taken_port() -> None:
    with SandboxServer() as busy:
        result = runner.invoke(app, ["serve", "--port", str(busy.port)])
    assert result.exit_code == 2
    assert f"port {busy.port} on 127.0.0.1 is already in use" in result.output
    assert "Traceback" not in result.output


MODULE = [sys.executable, "-m", "braintrust_migrate.sandbox.cli", "serve"]
CONSOLE_SCRIPT = [str(Path(sys.executable).with_name("braintrust-migrate")), "sandbox", "serve"]


def _inherit_sigint_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("started_as", ["foreground", "background"])
@pytest.mark.parametrize("command", [MODULE, CONSOLE_SCRIPT], ids=["module", "console-script"])
def test_serve_runs_and_stops_cleanly(
    tmp_path: Path, sig: signal.Signals, started_as: str, command: list[str]
) -> None:
    """A shell starts `serve &` with SIGINT ignored; `kill -INT` must stop it all the same. Through
    the main console script too, whose own Ctrl-C handler means "a migration was interrupted"."""
    orgs_file = tmp_path / "orgs.yaml"
    orgs_file.write_text(
        "orgs:\n  - name: dest\n    users: [dana@example.com]\ngrants:\n  - api_key: sk-source-key\n    org_name: dest\n"
    )
    proc = subprocess.Popen(
        [
            *command,
            "--port",
            "0",
            "--org",
            "source=sk-source-key",
            "--orgs-file",
            str(orgs_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_inherit_sigint_ignored if started_as == "background" else None,
    )
    try:
        lines = []
        assert proc.stdout is not None
        while not lines or "Ctrl-C" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, f"server exited early: {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line)
        url = re.search(r"http://\S+", lines[0]).group(0)  # type: ignore[union-attr]
        assert any("org source: api key sk-source-key" in line for line in lines)
        headers = {"Authorization": "Bearer sk-source-key"}
        orgs = httpx.get(url + "/v1/organization", headers=headers).json()["objects"]
        assert {o["name"] for o in orgs} == {"source", "dest"}
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "sandbox stopped" in out and "Traceback" not in err and "resume" not in err
