"""The public Python API against sandbox orgs over HTTP, judged by plain HTTP and the sandbox's
own write counter. Only `braintrust_migrate` (top level) and the sandbox are imported: what a
host program would use."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

import braintrust_migrate as bm
from braintrust_migrate.sandbox.seed.run import seed_org

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def fresh_host():
    """A host program that configured no logging (earlier CLI tests in this process did)."""
    was_configured, config = structlog.is_configured(), structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog.reset_defaults()
    root.handlers = [h for h in handlers if type(h).__module__.startswith("_pytest")]
    yield
    root.handlers, root.level = handlers, level
    if was_configured:
        structlog.configure(**config)
    else:
        structlog.reset_defaults()


def settings(server, orgs, state_dir: Path) -> dict[str, Any]:
    return {
        "bt_source_url": server.url,
        "bt_dest_url": server.url,
        "bt_source_api_key": orgs.source.api_key,
        "BT_DEST_API_KEY": orgs.dest.api_key,  # env var names work as keys too
        "migration_state_dir": state_dir,
        "migration_retry_delay": 0.01,
    }


def names(url: str, key: str, path: str) -> list[str]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        return sorted(o["name"] for o in client.get(path, params={"limit": 1000}).json()["objects"])


async def test_migrate_then_verify_through_the_public_api_prints_nothing(
    sandbox_server, sandbox_orgs, tmp_path, capfd, fresh_host
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed_org(url, src.api_key, profile="small")
    capfd.readouterr()
    events: list[bm.Event] = []
    values = settings(sandbox_server, sandbox_orgs, tmp_path)

    result = await bm.migrate(
        values, map_users=True, invite_users=True, env_file=None, on_event=events.append
    )

    assert isinstance(result, bm.MigrationResult)
    assert result.ok and not result.dry_run and not result.interrupted, result.failures
    assert result.failures == ()
    source_projects = names(url, src.api_key, "/v1/project")
    assert names(url, dst.api_key, "/v1/project") == source_projects  # the oracle: plain HTTP
    assert result.count("projects", "created") == len(source_projects) > 0
    assert json.loads(result.report_path.read_text()) == result.report
    assert result.summary_path.read_text().startswith("braintrust-migrate migration")
    # Every object outcome reached the hook once; rows too, batch by batch.
    objects = [e for e in events if e.kind == "object"]
    assert len(objects) == sum(sum(actions.values()) for actions in result.counts.values())
    assert {(e.type, e.action) for e in objects} == {
        (name, action) for name, actions in result.counts.items() for action in actions
    }
    written = sum(c.rows_written for c in result.containers)
    assert written > 0 and sum(e.rows for e in events if e.kind == "rows") == written
    assert {c.status for c in result.containers} == {"done"}
    assert all(isinstance(t, bm.Todo) and t.fix for t in result.todos)

    parity = await bm.verify(values, map_users=True, env_file=None)

    assert isinstance(parity, bm.VerifyResult)
    assert parity.ok, parity.summary_path.read_text()
    projects = next(t for t in parity.types if t.type == "projects")
    assert projects.matched == projects.source == len(source_projects)
    assert parity.containers and all(c.source_rows == c.dest_rows for c in parity.containers)
    assert parity.source_id_leaks == 0
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


async def test_plan_writes_nothing_and_reports_the_rows_to_copy(
    sandbox_server, sandbox_orgs, tmp_path, capfd, fresh_host
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed_org(url, src.api_key, profile="small")
    before = names(url, dst.api_key, "/v1/project"), sandbox_server.write_count(dst.api_key)
    capfd.readouterr()

    planned = await bm.plan(settings(sandbox_server, sandbox_orgs, tmp_path), env_file=None)

    assert (names(url, dst.api_key, "/v1/project"), sandbox_server.write_count(dst.api_key)) == before
    assert planned.dry_run and planned.ok
    assert planned.count("projects", "created") == len(names(url, src.api_key, "/v1/project"))
    rows = [c for c in planned.containers if c.status == "planned"]
    assert rows and all(c.rows_to_copy == c.rows_total and c.rows_total for c in rows)
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"bt_source_url": "ftp://example.com"},
            r"^invalid BT_SOURCE_URL \(--source-url\)='ftp://example\.com'",
        ),
        ({"migration_batch_size": "lots"}, r"^invalid MIGRATION_BATCH_SIZE"),
        ({"no_such_setting": 1}, r"^unknown setting 'no_such_setting'"),
        ({"bt_source_api_key": None}, r"^BT_SOURCE_API_KEY is not set"),
    ],
)
def test_bad_settings_raise_one_line_config_error_without_secrets(values, expected, tmp_path, capfd):
    secret = "sk-api-never-shown-0123456789"
    given = {"bt_source_api_key": secret, "bt_dest_api_key": secret + "x", **values}
    with pytest.raises(bm.ConfigError) as raised:
        bm.migrate_sync(given, env_file=None, migration_state_dir=tmp_path)
    message = str(raised.value)
    assert re.search(expected, message) and "\n" not in message
    assert secret not in message and secret not in repr(raised.value)
    assert capfd.readouterr() == ("", "")


def test_bad_settings_from_env_give_the_line_the_cli_prints(tmp_path, monkeypatch):
    for name in [k for k in os.environ if k.startswith(("BT_", "MIGRATION_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MIGRATION_BATCH_SIZE", "lots")
    monkeypatch.setenv("MIGRATION_MAX_CONCURRENT", "-1")
    env = dict(os.environ)
    with pytest.raises(bm.ConfigError) as raised:
        bm.make_settings(env_file=None)
    cli_path = Path(sys.executable).with_name("braintrust-migrate")
    cli = subprocess.run([cli_path, "validate"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert cli.returncode == 2
    assert cli.stderr == f"error: {raised.value}\n"
    assert "\n" not in str(raised.value) and "MIGRATION_MAX_CONCURRENT" in str(raised.value)


def test_settings_repr_hides_keys():
    made = bm.make_settings(bt_source_api_key="sk-api-never-shown-0123456789", env_file=None)
    assert "sk-api-never-shown" not in repr(made) and "sk-api-never-shown" not in str(made)


async def test_cancelling_the_task_saves_and_a_rerun_resumes(sandbox_server, sandbox_orgs, tmp_path):
    url, src = sandbox_server.url, sandbox_orgs.source
    await seed_org(url, src.api_key, profile="small")
    values = settings(sandbox_server, sandbox_orgs, tmp_path)
    task: asyncio.Task[bm.MigrationResult] | None = None
    seen: list[bm.Event] = []

    def cancel_after_first(event: bm.Event) -> None:
        seen.append(event)
        if len(seen) == 1 and task is not None:
            task.cancel()

    task = asyncio.create_task(bm.migrate(values, env_file=None, on_event=cancel_after_first))
    with pytest.raises(asyncio.CancelledError):
        await task
    (report_file,) = tmp_path.rglob("migration_report.json")
    saved = json.loads(report_file.read_text())
    assert saved["interrupted"] is True and saved["complete"] is False
    assert saved["objects"]  # what was done before the cancel is in the report

    again = await bm.migrate(values, env_file=None)

    assert again.ok and again.report["resumed"] is True and again.run_id == saved["run_id"]
    assert names(url, sandbox_orgs.dest.api_key, "/v1/project") == names(url, src.api_key, "/v1/project")


def readme_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Use from Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's 'Use from Python' section has no python code block"
    return match.group(1)


async def test_readme_example_runs_silently_in_a_fresh_process(sandbox_server, sandbox_orgs, tmp_path):
    url = sandbox_server.url
    await seed_org(url, sandbox_orgs.source.api_key, profile="small")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BT_", "MIGRATION_"))}
    env |= {
        "BT_SOURCE_URL": url,
        "BT_DEST_URL": url,
        "BT_SOURCE_API_KEY": sandbox_orgs.source.api_key,
        "BT_DEST_API_KEY": sandbox_orgs.dest.api_key,
        "MIGRATION_RETRY_DELAY": "0.01",
    }
    (tmp_path / "example.py").write_text(readme_example(), encoding="utf-8")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "example.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing but what the example prints itself
    lines = done.stdout.splitlines()
    assert lines[-1] == "migrated: True, verified: True"
    printed_by_the_example = re.compile(r"^(would create: |failed: |to do: |migrated: )|: \d+ rows$")
    assert [line for line in lines if not printed_by_the_example.search(line)] == []
    assert names(url, sandbox_orgs.dest.api_key, "/v1/project")


async def test_export_then_migrate_from_the_folder(sandbox_server, sandbox_orgs, tmp_path, fresh_host):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed_org(url, src.api_key, profile="small", seed=4)
    exported = await bm.export(
        {"bt_source_url": url, "bt_source_api_key": src.api_key, "migration_state_dir": tmp_path / "s"},
        to=tmp_path / "export",
        env_file=None,
    )
    assert isinstance(exported, bm.ExportResult) and exported.ok and exported.manifest.containers
    # Only the destination's key: the folder stands in for the source org.
    only_dest = {"bt_dest_url": url, "bt_dest_api_key": dst.api_key, "migration_state_dir": tmp_path / "s"}
    result = await bm.migrate(only_dest, from_dir=tmp_path / "export", env_file=None)
    assert result.ok
    assert names(url, dst.api_key, "/v1/project") == names(url, src.api_key, "/v1/project")
    parity = await bm.verify(only_dest, from_dir=tmp_path / "export", env_file=None)
    assert parity.ok, parity.report
    with pytest.raises(bm.ConfigError, match=r"manifest\.json"):
        await bm.migrate(only_dest, from_dir=tmp_path, env_file=None)  # not an export folder


async def test_follow_until_idle_and_renames_through_the_public_api(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {src.api_key}"}) as c:
        c.post("/v1/project", json={"name": "Old"}).raise_for_status()
    values = settings(sandbox_server, sandbox_orgs, tmp_path)
    with pytest.raises(bm.ConfigError, match="until_idle needs follow"):
        await bm.migrate(values, until_idle=1, env_file=None)
    result = await bm.migrate(
        values,
        follow=True,
        until_idle=0.3,
        migration_follow_interval=0.1,
        migration_project_map=["Old=New"],
        env_file=None,
    )
    assert result.ok, result.failures
    assert result.report["follow"]["stopped_by"] == "idle"
    assert names(url, dst.api_key, "/v1/project") == ["New"]
