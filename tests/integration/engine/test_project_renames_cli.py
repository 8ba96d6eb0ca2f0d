"""What a user types for project renames: collisions, unknown names, bad map files and a dry run,
through the installed CLI against sandbox orgs (exit codes, one-line errors, write counters)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson

from tests.integration.engine import cli_run
from tests.integration.engine.harness import list_all


def _projects(url: str, org: Any, *names: str) -> dict[str, str]:
    with cli_run.http(url, org) as c:
        return {n: c.post("/v1/project", json={"name": n}).raise_for_status().json()["id"] for n in names}


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout[-1500:], done.stderr[-1500:])
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, done.stdout[-1500:]
    return lines[-1]


def test_two_projects_on_one_name_and_unknown_names_exit_2_before_any_write(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    _projects(url, src, "Alpha", "Beta")
    env = cli_run.cli_env(url, src, dst, tmp_path)
    before = sandbox_server.write_count(dst.api_key)

    line = _error_line(cli_run.run(env, "--project-map", "Alpha=Same", "--project-map", "Beta=Same"))
    assert "'Alpha'" in line and "'Beta'" in line and "'Same'" in line
    # A rename onto another selected project's (kept) name collides too, also in a dry run.
    line = _error_line(cli_run.run(env, "--dry-run", "--project-map", "Alpha=Beta"))
    assert "'Alpha'" in line and "'Beta'" in line

    line = _error_line(cli_run.run(env, "--project-map", "Alpah=New"))
    assert "'Alpah'" in line and "'Alpha'" in line and "'Beta'" in line

    missing = tmp_path / "nowhere.yaml"
    line = _error_line(cli_run.run(env, "--project-map-file", str(missing)))
    assert str(missing) in line
    bad = tmp_path / "renames.json"
    bad.write_text("{not json", encoding="utf-8")
    line = _error_line(cli_run.run(env, "--project-map-file", str(bad)))
    assert str(bad) in line and "json" in line
    assert sandbox_server.write_count(dst.api_key) == before
    assert list_all(url, dst, "/v1/project") == []


def test_a_renamed_project_meeting_an_existing_one_needs_merge_into_existing(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    _projects(url, src, "Bot")
    existing = _projects(url, dst, "team/Bot")["team/Bot"]
    env = cli_run.cli_env(url, src, dst, tmp_path)
    before = sandbox_server.write_count(dst.api_key)

    line = _error_line(cli_run.run(env, "--project-prefix", "team/"))
    assert "'Bot'" in line and "'team/Bot'" in line and "--merge-into-existing" in line
    assert sandbox_server.write_count(dst.api_key) == before

    done = cli_run.run(env, "--project-prefix", "team/", "--merge-into-existing")
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert [(p["id"], p["name"]) for p in list_all(url, dst, "/v1/project")] == [(existing, "team/Bot")]
    # Once adopted, the pair's id map owns it: a re-run needs no flag.
    again = cli_run.run(env, "--project-prefix", "team/")
    assert again.returncode == 0, again.stdout[-1500:] + again.stderr[-1500:]


def test_dry_run_shows_the_new_names_and_writes_nothing(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    _projects(url, src, "Alpha", "Beta")
    env = cli_run.cli_env(url, src, dst, tmp_path)
    before = sandbox_server.write_count(src.api_key), sandbox_server.write_count(dst.api_key)
    done = cli_run.run(env, "--dry-run", "--project-map", "Alpha=First", "--project-prefix", "x-")
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert (sandbox_server.write_count(src.api_key), sandbox_server.write_count(dst.api_key)) == before
    path = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("report: "))
    report = orjson.loads(Path(path).read_bytes())
    planned = {
        o["name"]: (o["action"], o.get("dest_name")) for o in report["objects"] if o["type"] == "projects"
    }
    assert planned == {"Alpha": ("created", "First"), "Beta": ("created", "x-Beta")}
    assert "  Alpha -> First" in done.stdout and "  Beta -> x-Beta" in done.stdout  # the summary says so too


def test_export_refuses_renames(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    env = cli_run.cli_env(url, src, dst, tmp_path, MIGRATION_PROJECT_PREFIX="x-")
    done = subprocess.run(
        [cli_run.SCRIPT, "export", "--to", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = _error_line(done)
    assert "apply renames at import" in line
    assert not (tmp_path / "out").exists()


def test_import_applies_renames_to_an_export(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    ids = _projects(url, src, "Alpha")
    with cli_run.http(url, src) as c:
        graph = {"type": "function", "function": {"project_name": "Alpha", "slug": "tool"}}
        c.post(
            "/v1/function",
            json={
                "project_id": ids["Alpha"], "name": "agent", "slug": "agent",
                "function_data": {"type": "graph", "nodes": {"n": graph}, "edges": {}},
            },
        ).raise_for_status()  # fmt: skip
    env = cli_run.cli_env(url, src, dst, tmp_path / "state")
    folder = tmp_path / "export"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli_run.SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120)

    done = cli("export", "--to", str(folder))
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    done = cli("import", "--from", str(folder), "--project-map", "Alpha=Omega")
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    [project] = list_all(url, dst, "/v1/project")
    assert project["name"] == "Omega"
    [fn] = list_all(url, dst, "/v1/function")
    assert fn["project_id"] == project["id"]
    assert fn["function_data"]["nodes"]["n"]["function"]["project_name"] == "Omega"
