"""A write that landed in the destination while its record did not (kill -9 between the
answer and the state commit): the next run must recognise its own write, not report a
conflict, and pins to that object must translate to the version it holds."""

from __future__ import annotations

from tests.integration.engine.harness import migrate, seed, state_store
from tests.oracle import compare_orgs


async def test_writes_whose_records_were_lost_are_recognised(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    first = await migrate(url, src, dst, tmp_path, map_users=True)
    assert first.ok, first.summary_path.read_text()

    # What a kill right after each prompt/function write leaves behind: an id map entry with
    # the checksum of the content before the write, and no translation of its version.
    store = state_store(tmp_path, src, dst)
    with store._db:
        store._db.execute(
            "UPDATE id_map SET dest_checksum = 'before-the-lost-write' WHERE kind IN ('prompt', 'function')"
        )
        store._db.execute("DELETE FROM xact_map WHERE kind IN ('prompt', 'function')")
    store.close()

    again = await migrate(url, src, dst, tmp_path, map_users=True)
    conflicts = [o for o in again.report["objects"] if o["action"] == "conflict"]
    assert conflicts == [], [
        (o["name"], o.get("differing_fields"), o.get("reason"), o.get("notes")) for o in conflicts
    ]
    assert again.ok
    compare_orgs(url, src.api_key, dst.api_key).assert_equal()
