"""`export --to DIR` against sandbox orgs over HTTP, judged by independent reads: the API's
listings, BTQL paging (tests/integration/events/helpers.py), and the files read with plain
json/gzip, never with the export code."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from braintrust_migrate.archive import parts as parts_module
from braintrust_migrate.archive.export import export_org
from braintrust_migrate.config import ConfigError, load_settings
from braintrust_migrate.engine.resources import BY_NAME
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.source.live import LiveSource
from tests.integration.engine.cli_run import SCRIPT
from tests.integration.engine.harness import seed, snapshot
from tests.integration.events.helpers import all_rows, client, insert

AI_SECRET = "sk-export-plaintext-3f9a1c77d2"
ENV_VALUE = "env-export-plaintext-8b21e0"


def settings(url: str, org: SandboxOrg, **overrides: Any):
    values = {"bt_source_url": url, "bt_source_api_key": org.api_key, "migration_retry_delay": 0.01}
    return load_settings({**values, **overrides}, env_file=None)


def manifest_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.splitlines() if line]


def part_files(folder: Path, kind: str, cid: str) -> list[Path]:
    return sorted(p for p in (folder / "rows" / kind / cid).glob("part-*") if p.is_file())


def btql_count(url: str, org: SandboxOrg, kind: str, cid: str, version: str | None = None) -> int:
    body: dict[str, Any] = {"query": f"measures: count(1) as n\nfrom: {kind}('{cid}') spans", "fmt": "json"}
    if version is not None:
        body["version"] = version
    with client(url, org) as c:
        return int(c.post("/btql", json=body).raise_for_status().json()["data"][0]["n"])


def logs_project(url: str, org: SandboxOrg, rows: int, name: str = "Logs") -> str:
    with client(url, org) as c:
        project = c.post("/v1/project", json={"name": name}).raise_for_status().json()
    filler = "the quick brown fox " * 20
    for start in range(0, rows, 500):
        batch = [{"id": f"r-{i}", "input": {"i": i, "text": filler}, "output": i % 3} for i in range(start, min(rows, start + 500))]  # fmt: skip
        insert(url, org, "project_logs", project["id"], batch)
    return project["id"]


async def test_small_org_export_has_every_object_every_row_and_no_secret_value(
    sandbox_server, sandbox_org, tmp_path, monkeypatch
):
    url, org = sandbox_server.url, sandbox_org
    await seed(url, org, "small")
    with client(url, org) as c:
        c.post(
            "/v1/ai_secret", json={"name": "EXPORT_KEY", "type": "openai", "secret": AI_SECRET}
        ).raise_for_status()
        project = c.get("/v1/project", params={"limit": 1}).json()["objects"][0]
        c.post(
            "/v1/env_var",
            json={
                "object_type": "project",
                "object_id": project["id"],
                "name": "EXPORT_ENV",
                "value": ENV_VALUE,
            },
        ).raise_for_status()
    # The sandbox never lists secret values; an API that did must still not leak them into the folder.
    listing = LiveSource.list_type

    async def leaky(self: LiveSource, rt: Any, org_name: str | None, **kw: Any) -> list[dict[str, Any]]:
        found = await listing(self, rt, org_name, **kw)
        leaked = {"ai_secret": {"secret": AI_SECRET}, "env_var": {"value": ENV_VALUE}}.get(rt.kind, {})
        return [{**obj, **leaked} for obj in found]

    monkeypatch.setattr(LiveSource, "list_type", leaky)
    folder = tmp_path / "export"
    result = await export_org(settings(url, org, migration_copy_attachments=True), folder)
    assert result.ok, result.failures
    manifest = manifest_of(folder)
    assert manifest["source_org"]["id"] == org.id and manifest["tool_version"]

    # Objects: every id the API lists, per kind.
    listed: dict[str, set[str]] = {}
    for name, objects in snapshot(url, org).items():
        listed.setdefault(BY_NAME[name].kind, set()).update(o["id"] for o in objects)
    for kind, ids in listed.items():
        exported = {o["id"] for o in json.loads((folder / "objects" / f"{kind}.json").read_text())}
        assert exported == ids, kind

    # Rows: every container holds exactly the ids BTQL lists, once.
    raw = stored = 0
    for container in manifest["containers"]:
        kind, cid = container["kind"], container["id"]
        rows = [row for part in part_files(folder, kind, cid) for row in lines(part)]
        source = all_rows(url, org, kind, cid)
        assert len(rows) == len({r["id"] for r in rows}) == len(source) == btql_count(url, org, kind, cid)
        assert {r["id"] for r in rows} == set(source)
        raw += sum(len(orjson.dumps(r)) for r in rows)
        stored += sum(p.stat().st_size for p in part_files(folder, kind, cid))
        for version, vparts in container["versions"].items():
            vrows = [r for p in vparts for r in lines(folder / p["path"])]
            assert len(vrows) == btql_count(url, org, kind, cid, version)
    assert raw > 0 and stored <= 1.1 * raw
    print(f"\nexport bytes {stored} vs orjson row bytes {raw}: {stored / raw:.4f}x")
    assert any(c["versions"] for c in manifest["containers"]), "the seed pins dataset versions"

    # Every file on disk but the work dir is listed, with its sha256 and size.
    on_disk = {
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".export" not in p.parts
    } - {"manifest.json"}
    assert on_disk == set(manifest["files"])
    for rel, entry in manifest["files"].items():
        data = (folder / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"], rel
    assert manifest["attachments"], "the small seed uploads attachments"

    # No secret value anywhere in the folder; each secret-holding object is listed as needing one.
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert AI_SECRET.encode() not in data and ENV_VALUE.encode() not in data, path
    needs = {(n["type"], n["name"]) for n in manifest["needs_values"]}
    assert {("ai_secrets", "EXPORT_KEY"), ("env_vars", "EXPORT_ENV")} <= needs


async def test_gzip_export_holds_the_same_rows_in_fewer_bytes(sandbox_server, sandbox_org, tmp_path):
    url, org = sandbox_server.url, sandbox_org
    pid = logs_project(url, org, 1200)
    plain, packed = tmp_path / "plain", tmp_path / "gz"
    await export_org(settings(url, org), plain)
    await export_org(settings(url, org), packed, compression="gzip")
    a, b = part_files(plain, "project_logs", pid), part_files(packed, "project_logs", pid)
    assert all(p.name.endswith(".jsonl.gz") for p in b)
    assert [r for p in a for r in lines(p)] == [r for p in b for r in lines(p)]
    assert len([r for p in b for r in lines(p)]) == 1200
    assert sum(p.stat().st_size for p in b) * 3 < sum(p.stat().st_size for p in a)
    for rel, entry in manifest_of(packed)["files"].items():
        assert hashlib.sha256((packed / rel).read_bytes()).hexdigest() == entry["sha256"]


async def test_interrupted_export_resumes_every_row_exactly_once(
    sandbox_server, sandbox_org, tmp_path, monkeypatch
):
    url, org = sandbox_server.url, sandbox_org
    pid = logs_project(url, org, 3000)
    monkeypatch.setattr(parts_module, "PART_ROWS", 200)
    folder = tmp_path / "export"
    s = settings(url, org, migration_event_page_size=150)
    written: list[dict[str, Any]] = []

    async def interrupted() -> None:
        task = asyncio.current_task()
        assert task is not None

        def on_event(event: dict[str, Any]) -> None:
            written.append(event)
            if len(written) == 4:
                task.cancel()

        await export_org(s, folder, on_event=on_event)

    with pytest.raises(asyncio.CancelledError):
        await interrupted()
    assert not (folder / "manifest.json").exists()
    assert len(part_files(folder, "project_logs", pid)) < 15, "the export finished before the cancel"
    result = await export_org(s, folder)
    assert result.ok
    ids = [r["id"] for p in part_files(folder, "project_logs", pid) for r in lines(p)]
    assert len(ids) == len(set(ids)) == 3000
    assert set(ids) == set(all_rows(url, org, "project_logs", pid))
    assert not list(folder.rglob("*.tmp"))
    (container,) = [c for c in manifest_of(folder)["containers"] if c["id"] == pid]
    assert sum(p["rows"] for p in container["parts"]) == 3000


async def test_incremental_export_appends_only_new_and_changed_rows(sandbox_server, sandbox_org, tmp_path):
    url, org = sandbox_server.url, sandbox_org
    pid = logs_project(url, org, 600)
    with client(url, org) as c:
        dataset = c.post("/v1/dataset", json={"project_id": pid, "name": "golden"}).raise_for_status().json()
    folder = tmp_path / "export"
    await export_org(settings(url, org), folder)
    first = set(manifest_of(folder)["files"])

    insert(url, org, "project_logs", pid, [{"id": f"new-{i}", "input": i} for i in range(40)])
    insert(url, org, "project_logs", pid, [{"id": f"r-{i}", "input": "changed"} for i in range(5)])
    with client(url, org) as c:
        c.patch(f"/v1/dataset/{dataset['id']}", json={"description": "changed"}).raise_for_status()
    await export_org(settings(url, org), folder)
    manifest = manifest_of(folder)
    new_parts = [folder / rel for rel in set(manifest["files"]) - first if rel.startswith("rows/")]
    new_rows = [r for p in new_parts for r in lines(p)]
    assert sorted(r["id"] for r in new_rows) == sorted(
        [f"new-{i}" for i in range(40)] + [f"r-{i}" for i in range(5)]
    )
    assert all(r["input"] == "changed" for r in new_rows if r["id"].startswith("r-"))
    (exported,) = [
        d for d in json.loads((folder / "objects" / "dataset.json").read_text()) if d["id"] == dataset["id"]
    ]
    assert exported["description"] == "changed"
    for rel, entry in manifest["files"].items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == entry["sha256"], rel


async def test_export_of_another_org_into_the_same_folder_is_refused(sandbox_server, sandbox_orgs, tmp_path):
    url = sandbox_server.url
    folder = tmp_path / "export"
    await export_org(settings(url, sandbox_orgs.source), folder)
    before = (folder / "manifest.json").read_bytes()
    with pytest.raises(ConfigError) as refused:
        await export_org(settings(url, sandbox_orgs.dest), folder)
    assert str(folder) in str(refused.value) and "\n" not in str(refused.value)
    assert (folder / "manifest.json").read_bytes() == before


async def test_one_export_at_a_time_into_a_private_folder(sandbox_server, sandbox_org, tmp_path):
    url, org = sandbox_server.url, sandbox_org
    logs_project(url, org, 30)
    folder = tmp_path / "new" / "export"
    release = asyncio.Event()
    real_users = LiveSource.users

    async def held_users(*args: Any, **kwargs: Any) -> Any:
        await release.wait()  # the first export holds the folder while it waits here
        return await real_users(*args, **kwargs)

    LiveSource.users = held_users  # type: ignore[method-assign]
    try:
        first = asyncio.ensure_future(export_org(settings(url, org), folder))
        for _ in range(1000):  # until the first export has taken the folder
            if (folder / ".export" / "journal.jsonl").exists() or first.done():
                break
            await asyncio.sleep(0.01)
        assert not first.done()
        # A guard against a hang (a second export waiting on the held one), not a timing assert.
        async with asyncio.timeout(60):
            with pytest.raises(ConfigError, match=r"another braintrust-migrate .* is using the export in"):
                await export_org(settings(url, org), folder)
    finally:
        release.set()
        LiveSource.users = real_users  # type: ignore[method-assign]
    assert (await first).ok
    assert (folder.stat().st_mode & 0o777) == 0o700  # an org's data: the owner's alone


async def test_another_selection_into_the_same_folder_is_refused(sandbox_server, sandbox_org, tmp_path):
    url, org = sandbox_server.url, sandbox_org
    logs_project(url, org, 5, name="First")
    logs_project(url, org, 5, name="Second")
    folder = tmp_path / "export"
    await export_org(settings(url, org, migration_projects=["First"]), folder)
    before = manifest_of(folder)
    # Its files would stay beside a manifest that no longer lists them: the folder could not be imported.
    with pytest.raises(ConfigError, match="another selection") as refused:
        await export_org(settings(url, org, migration_projects=["Second"]), folder)
    assert "\n" not in str(refused.value) and str(folder) in str(refused.value)
    assert manifest_of(folder) == before
    again = await export_org(settings(url, org, migration_projects=["First"]), folder)  # the same: fine
    assert again.ok


def test_verify_export_compares_within_the_exports_window(sandbox_server, sandbox_org, tmp_path):
    url, org = sandbox_server.url, sandbox_org
    project = logs_project(url, org, 0)
    old = [{"id": f"old-{i}", "input": i, "created": f"2025-01-0{i + 1}T00:00:00Z"} for i in range(3)]
    new = [{"id": f"new-{i}", "input": i, "created": f"2026-06-0{i + 1}T00:00:00Z"} for i in range(4)]
    insert(url, org, "project_logs", project, old + new)
    env = {
        **os.environ, "BT_SOURCE_URL": url, "BT_SOURCE_API_KEY": org.api_key, "LOG_LEVEL": "WARNING",
        "MIGRATION_STATE_DIR": str(tmp_path / "state"),
    }  # fmt: skip
    folder = str(tmp_path / "export")
    done = subprocess.run([SCRIPT, "export", "--to", folder, "--created-after", "2026-01-01"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [c["parts"][0]["rows"] for c in manifest_of(Path(folder))["containers"]] == [4]
    # The rows the window left out are not "new in the org": the export's window is verify's.
    checked = subprocess.run([SCRIPT, "verify", "--export", folder], env=env, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_verify_export_counts_new_objects_inside_the_exports_projects_only(
    sandbox_server, sandbox_org, tmp_path
):
    url, org = sandbox_server.url, sandbox_org
    first = logs_project(url, org, 3, name="First")
    second = logs_project(url, org, 3, name="Second")
    env = {
        **os.environ, "BT_SOURCE_URL": url, "BT_SOURCE_API_KEY": org.api_key, "LOG_LEVEL": "WARNING",
        "MIGRATION_STATE_DIR": str(tmp_path / "state"),
    }  # fmt: skip
    folder = str(tmp_path / "export")
    done = subprocess.run([SCRIPT, "export", "--to", folder, "--projects", "First"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCRIPT, "verify", "--export", folder], env=env, capture_output=True, text=True)

    with client(url, org) as c:  # outside the export's selection: not a difference
        c.post("/v1/dataset", json={"project_id": second, "name": "later"}).raise_for_status()
    assert verify().returncode == 0, verify().stdout
    with client(url, org) as c:  # inside it: new since the export
        c.post("/v1/dataset", json={"project_id": first, "name": "later"}).raise_for_status()
    checked = verify()
    assert checked.returncode == 1 and "DIFFERENCES FOUND" in checked.stdout, checked.stdout
