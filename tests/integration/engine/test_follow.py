"""`migrate --follow` in-process: rows inserted and updated in the source while the follower runs
arrive exactly (content, no doubles), and objects created meanwhile arrive too. Judged by the
independent oracle and by plain BTQL."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from braintrust_migrate.btql import Query
from braintrust_migrate.config import ConfigError
from braintrust_migrate.engine.follow import Lag
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.testing import OrgPair
from tests.integration.engine.harness import migrate
from tests.oracle import compare_orgs


def client(url: str, org: SandboxOrg) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=30)


def seed(url: str, org: SandboxOrg, rows: int) -> dict[str, Any]:
    with client(url, org) as c:
        project = c.post("/v1/project", json={"name": "follow-p"}).raise_for_status().json()
        dataset = (
            c.post("/v1/dataset", json={"name": "follow-d", "project_id": project["id"]})
            .raise_for_status()
            .json()
        )
        events = [{"id": f"r-{i}", "input": {"i": i}, "expected": i} for i in range(rows)]
        c.post(f"/v1/dataset/{dataset['id']}/insert", json={"events": events}).raise_for_status()
    return {"project": project, "dataset": dataset}


class Writer(threading.Thread):
    """About 100 rows/s into the source dataset: new rows, and updates of earlier ones; halfway
    a prompt and an experiment with rows are created."""

    def __init__(self, url: str, org: SandboxOrg, seeded: dict[str, Any], seconds: float) -> None:
        super().__init__(daemon=True)
        self.url, self.org, self.seeded, self.seconds = url, org, seeded, seconds
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._write()
        except BaseException as error:  # surfaced by the test
            self.error = error

    def _write(self) -> None:
        dataset, project = self.seeded["dataset"]["id"], self.seeded["project"]["id"]
        started, n, objects_made = time.monotonic(), 0, False
        with client(self.url, self.org) as c:
            while time.monotonic() - started < self.seconds:
                new = [{"id": f"w-{n + k}", "input": {"w": n + k}} for k in range(8)]
                updates = [
                    {"id": f"r-{(n + k) % 20}", "input": {"i": n + k}, "expected": "upd"} for k in range(2)
                ]
                c.post(f"/v1/dataset/{dataset}/insert", json={"events": new + updates}).raise_for_status()
                n += 8
                self.written += 10
                if not objects_made and time.monotonic() - started > self.seconds / 2:
                    objects_made = True
                    c.post(
                        "/v1/prompt",
                        json={"project_id": project, "name": "late prompt", "slug": "late-prompt"},
                    ).raise_for_status()
                    exp = c.post("/v1/experiment", json={"project_id": project, "name": "late-exp"})
                    exp_id = exp.raise_for_status().json()["id"]
                    c.post(
                        f"/v1/experiment/{exp_id}/insert",
                        json={
                            "events": [{"id": f"e-{i}", "input": i, "scores": {"s": 0.5}} for i in range(5)]
                        },
                    ).raise_for_status()
                time.sleep(0.1)


def rows(url: str, org: SandboxOrg, kind: str, container: str) -> list[dict[str, Any]]:
    with client(url, org) as c:
        query = Query(kind, [container], select=["id", "input", "expected"], limit=100000)
        return c.post("/btql", json=query.body()).raise_for_status().json()["data"]


def by_name(url: str, org: SandboxOrg, path: str, name: str) -> dict[str, Any]:
    with client(url, org) as c:
        found = [o for o in c.get(path).raise_for_status().json()["objects"] if o["name"] == name]
    assert len(found) == 1, (path, name, found)
    return found[0]


def test_follow_copies_rows_and_objects_written_during_it(
    sandbox_server: Any, sandbox_orgs: OrgPair, tmp_path: Path
) -> None:
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seeded = seed(url, src, 20)
    writer = Writer(url, src, seeded, seconds=2.5)
    writer.start()
    result = asyncio.run(
        migrate(url, src, dst, tmp_path, follow=True, until_idle=0.8, migration_follow_interval=0.2)
    )
    writer.join()
    assert writer.error is None
    assert result.ok, result.report
    follow = result.report["follow"]
    assert follow["stopped_by"] == "idle"
    assert follow["passes"] >= 2 and follow["rows_copied"] > 0  # rows arrived while following
    assert follow["last_lag"]["rows_behind"] == 0
    # The source, exactly: every row's latest content, each id once.
    src_rows = rows(url, src, "dataset", seeded["dataset"]["id"])
    dst_dataset = by_name(url, dst, "/v1/dataset", "follow-d")
    dst_rows = rows(url, dst, "dataset", dst_dataset["id"])
    assert len(dst_rows) == len({r["id"] for r in dst_rows}) == len(src_rows) == 20 + writer.written * 8 // 10
    assert {r["id"]: (r["input"], r["expected"]) for r in dst_rows} == {
        r["id"]: (r["input"], r["expected"]) for r in src_rows
    }
    by_name(url, dst, "/v1/prompt", "late prompt")
    exp = by_name(url, dst, "/v1/experiment", "late-exp")
    assert len(rows(url, dst, "experiment", exp["id"])) == 5
    compare_orgs(url, src.api_key, dst.api_key).assert_equal()


def test_follow_stops_on_fetch_fallback_naming_the_data_plane(
    sandbox_server: Any, sandbox_orgs: OrgPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source without /btql: the copy is done by /fetch, then follow stops with one clear error."""
    from braintrust_migrate.source import reader

    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed(url, src, 5)

    async def no_btql(self: Any) -> Any:
        raise reader.NoBtql()
        yield  # an async generator, as BtqlReader.pages is

    monkeypatch.setattr(reader.BtqlReader, "pages", no_btql)
    with pytest.raises(ConfigError, match=r"--follow needs BTQL on the source data plane \(http"):
        asyncio.run(migrate(url, src, dst, tmp_path, follow=True, until_idle=0))


def test_lag_dates_the_oldest_change_still_not_copied() -> None:
    lag = Lag()
    lag.observe({"a": 10}, now=100.0)
    assert (lag.rows, lag.seconds) == (10, 0.0)  # the first look dates what it sees now
    lag.consume("a", 10)  # the pass copied them
    lag.observe({"a": 5}, now=102.0)  # five new ones: written after the look at t=100
    assert (lag.rows, lag.seconds) == (5, 2.0)
    lag.consume("a", 2)
    lag.observe({"a": 3, "b": 4}, now=104.0)
    assert (lag.rows, lag.seconds) == (7, 4.0)  # a's three left arrived after t=100
    lag.consume("a", 3)
    lag.observe({"a": 0, "b": 4}, now=106.0)
    assert (lag.rows, lag.seconds) == (4, 4.0)  # b's from after t=102


def test_follow_with_sync_deletes_mirrors_a_delete_made_while_following(
    sandbox_server: Any, sandbox_orgs: OrgPair, tmp_path: Path
) -> None:
    """Rows and a prompt deleted in the source during follow are deleted in the destination once
    follow has caught up; rows the destination got from elsewhere stay."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seeded = seed(url, src, 10)
    with client(url, src) as c:
        c.post(
            "/v1/prompt", json={"project_id": seeded["project"]["id"], "name": "doomed", "slug": "doomed"}
        ).raise_for_status()
    assert asyncio.run(migrate(url, src, dst, tmp_path)).ok
    dst_dataset = by_name(url, dst, "/v1/dataset", "follow-d")
    with client(url, dst) as c:  # an application's own row in the destination
        c.post(
            f"/v1/dataset/{dst_dataset['id']}/insert", json={"events": [{"id": "app-row", "input": 1}]}
        ).raise_for_status()

    def delete_later() -> None:
        time.sleep(0.6)
        with client(url, src) as c:
            doomed = [o for o in c.get("/v1/prompt").json()["objects"] if o["name"] == "doomed"]
            c.delete(f"/v1/prompt/{doomed[0]['id']}").raise_for_status()
            events = [{"id": f"r-{i}", "_object_delete": True} for i in (1, 2)]
            c.post(
                f"/v1/dataset/{seeded['dataset']['id']}/insert", json={"events": events}
            ).raise_for_status()

    deleter = threading.Thread(target=delete_later, daemon=True)
    deleter.start()
    result = asyncio.run(
        migrate(
            url,
            src,
            dst,
            tmp_path,
            follow=True,
            sync_deletes=True,
            until_idle=1.5,
            migration_follow_interval=0.2,
        )
    )
    deleter.join()
    assert result.ok, result.report
    dst_ids = {r["id"] for r in rows(url, dst, "dataset", dst_dataset["id"])}
    assert dst_ids == {f"r-{i}" for i in range(10) if i not in (1, 2)} | {"app-row"}
    with client(url, dst) as c:
        assert [o for o in c.get("/v1/prompt").json()["objects"] if o["name"] == "doomed"] == []
    assert result.report["deletes"]["rows_deleted"] == 2


def test_follow_passes_plan_shared_reads_on_their_own_counts(
    sandbox_server: Any, sandbox_orgs: OrgPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass counts each stream's rows behind already: it sends no grouped count of its own."""
    from braintrust_migrate.source.live import LiveSource

    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed(url, src, 5)
    grouped: list[str] = []
    counts = LiveSource.counts

    async def counted(self: LiveSource, kind: str, *args: Any) -> Any:
        grouped.append(kind)
        return await counts(self, kind, *args)

    monkeypatch.setattr(LiveSource, "counts", counted)
    assert asyncio.run(migrate(url, src, dst, tmp_path)).ok
    plain = len(grouped)
    assert plain > 0  # the copy itself plans its shared reads on grouped counts
    grouped.clear()
    result = asyncio.run(
        migrate(url, src, dst, tmp_path, follow=True, until_idle=0.6, migration_follow_interval=0.1)
    )
    assert result.ok
    assert result.report["follow"]["passes"] >= 2
    assert len(grouped) == plain  # the copy before following, and no pass after it
