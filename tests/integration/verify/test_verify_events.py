"""`verify` on event rows: parity after a migration, and each kind of damage caught, in
full and with --sample."""

from __future__ import annotations

import random

import pytest

from braintrust_migrate.verify.runner import Verifier
from tests.integration.engine.harness import migrate, settings_for
from tests.integration.events.helpers import all_rows, client, insert
from tests.integration.events.test_stream_fidelity import build_source


async def migrated(server, orgs, tmp_path):
    url, src, dst = server.url, orgs.source, orgs.dest
    build_source(url, src, random.Random(5))
    assert (await migrate(url, src, dst, tmp_path, map_users=True, invite_users=True, overwrite=True)).ok
    with client(url, dst) as c:
        project = c.get("/v1/project", params={"project_name": "Streams"}).json()["objects"][0]
    return url, src, dst, project["id"]


async def verify(url, src, dst, tmp_path, sample=None):
    return await Verifier(settings_for(url, src, dst, tmp_path), sample=sample, map_users=True).run()


def logs_row(report):
    return next(e for e in report["events"] if e["container"] == "project_logs")


async def test_rows_at_parity_after_migration(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst, _ = await migrated(sandbox_server, sandbox_orgs, tmp_path)
    result = await verify(url, src, dst, tmp_path)
    assert result.ok, result.summary_path.read_text()
    assert {e["container"] for e in result.report["events"]} == {"project_logs", "experiment", "dataset"}
    assert all(e["source_rows"] == e["dest_rows"] > 0 for e in result.report["events"])


@pytest.mark.parametrize("sample", [None, 1000])
async def test_catches_deleted_edited_and_extra_rows(sandbox_server, sandbox_orgs, tmp_path, sample):
    url, src, dst, project = await migrated(sandbox_server, sandbox_orgs, tmp_path)
    insert(url, dst, "project_logs", project, [{"id": "log-3-0", "_object_delete": True}])
    insert(url, dst, "project_logs", project, [{"id": "log-4-0", "_is_merge": True, "output": "tampered"}])
    insert(url, dst, "project_logs", project, [{"id": "stowaway", "input": "not in the source"}])
    assert "stowaway" in all_rows(url, dst, "project_logs", project)
    result = await verify(url, src, dst, tmp_path, sample=sample)
    assert not result.ok
    row = logs_row(result.report)
    assert row["missing_sample"] == ["log-3-0"]
    assert row["differing_sample"] == ["log-4-0"]
    if sample is None:
        assert row["extra_sample"] == ["stowaway"]
    assert row["source_rows"] == row["dest_rows"]  # one gone, one extra: only ids tell
    summary = result.summary_path.read_text()
    assert "log-3-0" in summary and "log-4-0" in summary
