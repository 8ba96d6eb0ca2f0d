"""Comments arrive exactly once, as users wrote them, whatever happened to earlier runs:
a feedback request that landed with its response lost, a new state dir, `--fresh`, ids
that need quoting, a row re-inserted. Judged by reading the destination over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.harness import migrate
from tests.integration.events.helpers import all_rows, client, feedback, insert

ODD_IDS = ["it's", "back\\slash", 'dq"quote', "ünï-✓", "a'b\\'c", "plain"]


def source_project(url, org, name: str = "Commented") -> str:
    with client(url, org) as c:
        return c.post("/v1/project", json={"name": name}).raise_for_status().json()["id"]


def add_rows(url, org, project: str, ids: list[str], comments_per_row: int = 2) -> None:
    insert(url, org, "project_logs", project, [{"id": i, "input": {"q": i}, "output": "a"} for i in ids])
    for n in range(comments_per_row):
        feedback(url, org, "project_logs", project, [{"id": i, "comment": f"note {n} on {i}"} for i in ids])


def dest_project(url, org, name: str = "Commented") -> str:
    with client(url, org) as c:
        return c.get("/v1/project", params={"project_name": name}).json()["objects"][0]["id"]


def copies(url, src, dst, src_project: str, name: str = "Commented") -> dict[str, Counter]:
    """Per row: how many times each source comment's text is on the destination row."""
    dest = all_rows(url, dst, "project_logs", dest_project(url, dst, name))
    source = all_rows(url, src, "project_logs", src_project)
    assert set(dest) == set(source)
    return {i: Counter(c["comment"]["text"] for c in row.get("comments") or []) for i, row in dest.items()}


def assert_exactly_once(url, src, dst, src_project: str) -> None:
    source = all_rows(url, src, "project_logs", src_project)
    got = copies(url, src, dst, src_project)
    for row_id, row in source.items():
        want = Counter(c["comment"]["text"] for c in row.get("comments") or [])
        assert got[row_id] == want, f"row {row_id!r}: {dict(got[row_id])} != {dict(want)}"


def lose_feedback_responses(server, dst, dest_id: str) -> None:
    """Every feedback request on the destination project is applied, then its response is lost."""
    server.set_faults(
        FaultSettings(
            drop_rate=1.0, drop_phase="after", include_paths=(f"/v1/project_logs/{dest_id}/feedback",)
        ),
        org=dst.name,
    )


async def test_run_killed_after_feedback_landed_then_rerun(sandbox_server, sandbox_orgs, tmp_path):
    """The feedback landed, nothing was recorded (no retries: as if killed right then): the
    re-run reads the destination back and sends none of those comments again."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    project = source_project(url, src)
    assert (await migrate(url, src, dst, tmp_path)).ok  # the project exists, without rows
    add_rows(url, src, project, [f"row-{i}" for i in range(40)])
    lose_feedback_responses(sandbox_server, dst, dest_project(url, dst))
    try:
        first = await migrate(url, src, dst, tmp_path, migration_retry_attempts=0)
    finally:
        dropped = sandbox_server.fault_stats(dst.name).drops_after
        sandbox_server.clear_faults()
    assert dropped >= 1 and not first.ok
    assert (await migrate(url, src, dst, tmp_path)).ok
    assert_exactly_once(url, src, dst, project)


async def test_new_state_dir_or_fresh_doubles_no_comment(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    project = source_project(url, src)
    add_rows(url, src, project, [f"row-{i}" for i in range(30)])
    assert (await migrate(url, src, dst, tmp_path / "first")).ok
    assert (await migrate(url, src, dst, tmp_path / "other")).ok  # a state dir that knows nothing
    assert (await migrate(url, src, dst, tmp_path / "first", fresh=True)).ok
    assert_exactly_once(url, src, dst, project)
    # A changed source row is re-inserted (replaced) in the destination: its comments stay, once.
    insert(url, src, "project_logs", project, [{"id": "row-3", "input": {"q": "changed"}, "output": "b"}])
    assert (await migrate(url, src, dst, tmp_path / "first")).ok
    assert_exactly_once(url, src, dst, project)
    dest = all_rows(url, dst, "project_logs", dest_project(url, dst))
    assert dest["row-3"]["input"] == {"q": "changed"}


async def test_odd_row_ids_get_their_comments_exactly_once(sandbox_server, sandbox_orgs, tmp_path):
    """Quotes, backslashes and unicode in row ids: the read-back query still finds the rows
    (every response of the first run's feedback is lost, so it depends on that query)."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    project = source_project(url, src)
    assert (await migrate(url, src, dst, tmp_path)).ok
    add_rows(url, src, project, ODD_IDS)
    lose_feedback_responses(sandbox_server, dst, dest_project(url, dst))
    try:
        first = await migrate(url, src, dst, tmp_path, migration_retry_attempts=2)
    finally:
        sandbox_server.clear_faults()
    assert first.ok, first.summary_path.read_text()
    assert_exactly_once(url, src, dst, project)
    assert (await migrate(url, src, dst, tmp_path / "other")).ok
    assert_exactly_once(url, src, dst, project)


async def test_comment_metadata_source_and_provenance_kept(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    project = source_project(url, src)
    insert(url, src, "project_logs", project, [{"id": "r1", "input": 1}, {"id": "r2", "input": 2}])
    feedback(url, src, "project_logs", project, [
        {"id": "r1", "comment": "from the app", "source": "app", "metadata": {"user_id": "u-7", "k": [1, 2]}},
        {"id": "r1", "comment": "plain"},
    ])  # fmt: skip
    # A comment the way the official SDK's log_feedback writes it (through /logs3).
    sdk_comment = {
        "id": str(uuid.uuid4()),
        "created": "2026-03-04T05:06:07.000Z",
        "origin": {"id": "r2"},
        "comment": {"text": "from the sdk"},
        "project_id": project,
        "log_id": "g",
        "_audit_source": "api",
        "_audit_metadata": {"reviewer": "sam"},
    }
    with client(url, src) as c:
        c.post("/logs3", json={"rows": [sdk_comment], "api_version": 2}).raise_for_status()
    source = all_rows(url, src, "project_logs", project)
    assert (await migrate(url, src, dst, tmp_path)).ok
    dest = all_rows(url, dst, "project_logs", dest_project(url, dst))
    for row_id in ("r1", "r2"):
        want = {c["comment"]["text"]: c for c in source[row_id]["comments"]}
        got = {c["comment"]["text"]: c for c in dest[row_id]["comments"]}
        assert set(got) == set(want) and len(got) == len(dest[row_id]["comments"])
        for text, original in want.items():
            copy = got[text]
            assert copy["source"] == original["source"], text
            metadata = dict(copy["metadata"])
            provenance = metadata.pop("migrated_comment")
            assert metadata == (original.get("metadata") or {}), text
            assert provenance == {
                "source_comment_id": original["id"],
                "author": original["user_id"],
                "created": original["created"],
            }
    assert got["from the sdk"]["source"] == "api"
    assert want["from the sdk"]["created"] == "2026-03-04T05:06:07.000Z"


def test_sandbox_btql_quotes_odd_ids_for_the_read_back(sandbox_server, sandbox_org):
    """The read-back query (built by the one BTQL builder) matches exactly the ids asked for."""
    from braintrust_migrate.engine.events.comments import CommentCopier

    url, org = sandbox_server.url, sandbox_org
    project = source_project(url, org, "Quoting")
    insert(url, org, "project_logs", project, [{"id": i, "input": 1} for i in [*ODD_IDS, "a'b"]])
    copier = CommentCopier(None, "project_logs", project, None, "s")  # type: ignore[arg-type]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"}) as c:
        for row_id in ODD_IDS:
            body = copier.query([row_id]).body()
            data = c.post("/btql", json=body).raise_for_status().json()["data"]
            assert [r["id"] for r in data] == [row_id]


async def test_a_new_container_is_not_read_back_and_a_row_read_twice_keeps_one_copy(
    sandbox_server, sandbox_orgs, tmp_path
):
    """Into a container this run creates, comments are de-duplicated by the stream's own records
    (no BTQL read of the destination per batch); a row updated in the source while the copy runs
    is read a second time (its keyset key moved on), and its comments still land once."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    project = source_project(url, src)
    ids = [f"r{i:03d}" for i in range(400)]
    add_rows(url, src, project, ids, comments_per_row=1)
    # Slow source pages, so that the update lands while the stream is still reading; the
    # destination's BTQL requests counted.
    sandbox_server.set_faults(FaultSettings(latency_ms=80, include_paths=("/btql",)), org=src.name)
    sandbox_server.set_faults(FaultSettings(include_paths=("/btql",)), org=dst.name)
    run = asyncio.create_task(
        migrate(url, src, dst, tmp_path, migration_event_page_size=20, migration_insert_batch_rows=20)
    )
    # A few of the 20 pages read (each takes 80 ms): the rest, r000's new version last, are still to come.
    while not run.done() and sandbox_server.fault_stats(src.name).requests < 4:
        await asyncio.sleep(0.005)
    assert not run.done(), "the copy finished before the update: nothing was tested"
    insert(url, src, "project_logs", project, [{"id": "r000", "input": {"q": "r000"}, "output": "changed"}])
    result = await run
    dest_reads = sandbox_server.fault_stats(dst.name).requests
    sandbox_server.clear_faults()
    assert result.ok, result.summary_path.read_text()
    (logs,) = [c for c in result.report["events"]["containers"] if c["container"] == "project_logs"]
    assert logs["rows_read"] == len(ids) + 1  # r000 was read twice
    assert logs["comments_copied"] == len(ids)
    assert dest_reads == 0  # no comment read-back (20 batches with comments would have made 20)
    assert all_rows(url, dst, "project_logs", dest_project(url, dst))["r000"]["output"] == "changed"
    assert_exactly_once(url, src, dst, project)
