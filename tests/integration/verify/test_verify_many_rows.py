"""`verify` of a container with thousands of rows: rows are compared through per-bucket digests,
so one damaged row among many must still be found and named, attachments still compared without
their keys, a leak in one row still located, and memory must not grow with the rows compared."""

from __future__ import annotations

import tracemalloc
from typing import Any

from braintrust_migrate.verify.runner import Verifier
from tests.integration.engine.harness import settings_for
from tests.integration.events.helpers import client, insert

ROWS = 6000


def _project(url, org, name) -> str:
    with client(url, org) as c:
        return c.post("/v1/project", json={"name": name}).raise_for_status().json()["id"]


def _row(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"row-{i}", "span_id": f"s-{i}", "root_span_id": f"s-{i}", "created": "2025-01-01T00:00:00Z",
            "input": {"q": f"question {i}"}, "output": f"answer {i}", "metadata": {"n": i}, **extra}  # fmt: skip


def _attachment(key: str, name: str = "a.txt") -> dict[str, Any]:
    return {"type": "braintrust_attachment", "key": key, "filename": name, "content_type": "text/plain"}


def _both(url, src, dst, rows: int, *, src_extra=(), dst_extra=(), name="Many") -> tuple[str, str]:
    """The same rows written into a project of the same name on both sides (verify matches the
    project by name); the extras are each side's own rows, written after."""
    src_project, dst_project = _project(url, src, name), _project(url, dst, name)
    for start in range(0, rows, 1000):
        batch = [_row(i) for i in range(start, min(rows, start + 1000))]
        insert(url, src, "project_logs", src_project, batch)
        insert(url, dst, "project_logs", dst_project, batch)
    if src_extra:
        insert(url, src, "project_logs", src_project, list(src_extra))
    if dst_extra:
        insert(url, dst, "project_logs", dst_project, list(dst_extra))
    return src_project, dst_project


async def _verify(url, src, dst, tmp_path, **overrides):
    settings = settings_for(url, src, dst, tmp_path, migration_resources=["logs"], **overrides)
    return await Verifier(settings).run()


def _logs(result) -> dict[str, Any]:
    return next(e for e in result.report["events"] if e["container"] == "project_logs")


async def test_one_missing_one_extra_one_differing_row_among_thousands(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    src_extra = [_row(ROWS, input=_attachment("src-key")), _row(ROWS + 1, input=_attachment("k", "x.txt"))]
    dst_extra = [_row(ROWS, input=_attachment("dst-key")), _row(ROWS + 1, input=_attachment("k", "y.txt"))]
    _, dst_project = _both(url, src, dst, ROWS, src_extra=src_extra, dst_extra=dst_extra)
    clean = await _verify(url, src, dst, tmp_path)
    logs = _logs(clean)
    # Only the attachment's file name differs; its new key in the destination is by design.
    assert (logs["source_rows"], logs["dest_rows"]) == (ROWS + 2, ROWS + 2)
    assert (logs["missing"], logs["extra"], logs["differing"]) == (0, 0, 1)
    assert logs["differing_sample"] == [f"row-{ROWS + 1}"]

    insert(url, dst, "project_logs", dst_project, [{"id": "row-4321", "_object_delete": True}])
    insert(
        url, dst, "project_logs", dst_project, [{"id": "row-77", "_is_merge": True, "metadata": {"n": -1}}]
    )
    insert(url, dst, "project_logs", dst_project, [_row(10**6)])
    damaged = _logs(await _verify(url, src, dst, tmp_path))
    assert (damaged["source_rows"], damaged["dest_rows"]) == (ROWS + 2, ROWS + 2)
    assert (damaged["missing"], damaged["extra"], damaged["differing"]) == (1, 1, 2)
    assert damaged["missing_sample"] == ["row-4321"]
    assert damaged["extra_sample"] == [f"row-{10**6}"]
    assert sorted(damaged["differing_sample"]) == [f"row-{ROWS + 1}", "row-77"]
    assert not damaged["ok"]


async def test_a_source_id_in_one_row_among_thousands_is_located(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    src_project, dst_project = _both(url, src, dst, 3000)
    # The source project's id, upper-cased in a key (not a value) and in a value: only the value leaks.
    leaky = {"id": "row-2999", "_is_merge": True, "metadata": {"from": f"copied {src_project} here"},
             "scores": {src_project: 1}}  # fmt: skip
    insert(url, dst, "project_logs", dst_project, [leaky])
    insert(url, src, "project_logs", src_project, [{**leaky, "metadata": {"from": "x"}}])
    result = await _verify(url, src, dst, tmp_path)
    assert result.report["source_id_leak_count"] == 1
    assert result.report["source_id_leaks"] == [
        {
            "type": "project_logs",
            "dest_id": dst_project,
            "row_id": "row-2999",
            "field": "metadata.from",
            "source_id": src_project,
        }
    ]


async def _peak(url, src, dst, tmp_path, project: str) -> int:
    tracemalloc.start()
    try:
        result = await _verify(
            url, src, dst, tmp_path, migration_projects=[project], migration_event_page_size=500
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.ok, result.summary_path.read_text()
    return peak


async def test_memory_does_not_grow_with_the_rows_compared(sandbox_server, sandbox_orgs, tmp_path):
    # A map of every row id on both sides grows by ~6 MB from 2k to 20k rows; pages of 500 do not.
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    _both(url, src, dst, 2_000, name="Small")
    _both(url, src, dst, 20_000, name="Big")
    small = await _peak(url, src, dst, tmp_path / "small", "Small")
    big = await _peak(url, src, dst, tmp_path / "big", "Big")
    assert big - small < 1_500_000, f"peak {small / 1e6:.1f} MB at 2k rows, {big / 1e6:.1f} MB at 20k"
