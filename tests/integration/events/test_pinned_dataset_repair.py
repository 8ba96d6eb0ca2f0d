"""A pinned dataset whose destination lost rows behind this state's back (a run from another
state folder rewinds it to a pin, deleting later rows): the next run with this state, whose
records say everything is done, must find that out from the destination and write them again."""

from __future__ import annotations

from tests.integration.engine.harness import list_all, migrate, seed
from tests.integration.events.helpers import all_rows, insert


async def test_rows_the_destination_lost_are_written_again(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    first = await migrate(url, src, dst, tmp_path)
    assert first.ok, first.summary_path.read_text()

    pinned = {s["dataset_id"] for s in list_all(url, src, "/v1/dataset_snapshot")}
    source_ds = next(d for d in list_all(url, src, "/v1/dataset") if d["id"] in pinned)
    dest_ds = next(d for d in list_all(url, dst, "/v1/dataset") if d["name"] == source_ds["name"])
    before = all_rows(url, dst, "dataset", dest_ds["id"])
    lost = sorted(before)[:3]
    insert(url, dst, "dataset", dest_ds["id"], [{"id": i, "_object_delete": True} for i in lost])
    assert set(all_rows(url, dst, "dataset", dest_ds["id"])) == set(before) - set(lost)

    again = await migrate(url, src, dst, tmp_path)
    assert again.ok, again.summary_path.read_text()
    after = all_rows(url, dst, "dataset", dest_ds["id"])
    assert set(after) == set(all_rows(url, src, "dataset", source_ds["id"])) == set(before)
