"""``/v1/{kind}/{id}/fetch`` serves live rows only, as the hosted API does (issue #14): the
latest version of each id as of ``version`` (or now), no superseded version on any page,
no deleted id. The official SDK's ``init_dataset(...).fetch()`` keeps every event it is
given, so it must see exactly the live dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from tests.integration.sandbox.helpers import Api

LIVE = {f"row-{i}": i for i in (0, 2, 4, 5, 6, 7, 8, 9)} | {"row-late": "late"}


def insert(api: Api, dataset_id: str, *events: dict[str, Any]) -> str:
    """Insert in one request; returns the transaction id it wrote (read back through BTQL)."""
    api.post(f"/v1/dataset/{dataset_id}/insert", {"events": list(events)})
    query = f"select: _xact_id\nfrom: dataset('{dataset_id}')\nlimit: 1000"
    rows = api.client.post("/btql", json={"query": query}).json()
    return str(max(int(r["_xact_id"]) for r in rows["data"]))


def history(api: Api, dataset_id: str) -> tuple[str, str, str]:
    """10 rows, 3 updates, 2 deletes and 1 late insert: 9 live ids. Returns three pins:
    after the first inserts, after the updates, after the deletes."""
    first = insert(api, dataset_id, *({"id": f"row-{i}", "input": i, "expected": i} for i in range(10)))
    insert(api, dataset_id, {"id": "row-0", "_is_merge": True, "metadata": {"v": 2}})
    updated = insert(api, dataset_id, {"id": "row-2", "input": 2, "expected": "two"})
    insert(api, dataset_id, {"id": "row-1", "_object_delete": True})
    # a visible write in the delete's request, so BTQL can name that transaction
    deleted = insert(
        api,
        dataset_id,
        {"id": "row-3", "_object_delete": True},
        {"id": "row-4", "_is_merge": True, "tags": ["t"]},
    )
    insert(api, dataset_id, {"id": "row-late", "input": "late", "expected": 0})
    return first, updated, deleted


def fetch_all(api: Api, dataset_id: str, limit: int, **extra: Any) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        page = api.post(
            f"/v1/dataset/{dataset_id}/fetch",
            {"limit": limit, **extra, **({"cursor": cursor} if cursor else {})},
        )
        out += page["events"]
        cursor = page.get("cursor")
        if not page["events"] or not cursor:
            return out


@pytest.fixture
def dataset(api: Api) -> dict[str, Any]:
    project = api.post("/v1/project", {"name": "fetch-live"})
    return api.post("/v1/dataset", {"project_id": project["id"], "name": "golden"})


@pytest.mark.parametrize("limit", [1, 2, 1000])
def test_fetch_pages_hold_each_live_id_once_at_its_latest_version(
    api: Api, dataset: dict[str, Any], limit: int
) -> None:
    history(api, dataset["id"])
    events = fetch_all(api, dataset["id"], limit)
    assert sorted(r["id"] for r in events) == sorted(LIVE)  # no duplicate, no deleted id
    by_id = {r["id"]: r for r in events}
    assert by_id["row-0"]["metadata"] == {"v": 2} and by_id["row-2"]["expected"] == "two"
    xacts = [int(r["_xact_id"]) for r in events]
    assert xacts == sorted(xacts, reverse=True)  # still newest first


def test_get_form_and_no_limit_serve_the_live_rows(api: Api, dataset: dict[str, Any]) -> None:
    history(api, dataset["id"])
    assert sorted(r["id"] for r in api.get(f"/v1/dataset/{dataset['id']}/fetch")["events"]) == sorted(LIVE)
    assert sorted(r["id"] for r in api.post(f"/v1/dataset/{dataset['id']}/fetch", {})["events"]) == sorted(
        LIVE
    )


def test_version_serves_the_rows_live_at_that_version(api: Api, dataset: dict[str, Any]) -> None:
    first, updated, deleted = history(api, dataset["id"])
    at_first = fetch_all(api, dataset["id"], 3, version=first)
    assert sorted((r["id"], r["expected"]) for r in at_first) == sorted((f"row-{i}", i) for i in range(10))
    at_update = {r["id"]: r for r in fetch_all(api, dataset["id"], 3, version=updated)}
    assert sorted(at_update) == sorted(f"row-{i}" for i in range(10))
    assert at_update["row-2"]["expected"] == "two" and at_update["row-0"]["metadata"] == {"v": 2}
    at_delete = fetch_all(api, dataset["id"], 3, version=deleted)
    assert sorted(r["id"] for r in at_delete) == sorted(set(LIVE) - {"row-late"})


SDK_READ = textwrap.dedent(
    """
    import json, os, braintrust
    url, key = os.environ["RT_URL"], os.environ["RT_KEY"]
    braintrust.login(app_url=url, api_key=key, force_login=True)
    ds = braintrust.init_dataset(project="fetch-live", name="golden", api_key=key, app_url=url)
    print(json.dumps([{"id": r["id"], "expected": r["expected"]} for r in ds.fetch(batch_size=2)]))
    """
)


def test_sdk_dataset_fetch_yields_exactly_the_live_rows(
    api: Api, dataset: dict[str, Any], sandbox_server: SandboxServer, sandbox_org: SandboxOrg
) -> None:
    pytest.importorskip("braintrust")
    history(api, dataset["id"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINTRUST_", "BT_"))}
    env.update(
        BRAINTRUST_NUM_RETRIES="0",
        BRAINTRUST_DISABLE_ATEXIT_FLUSH="true",
        RT_URL=sandbox_server.url,
        RT_KEY=sandbox_org.api_key,
    )
    done = subprocess.run(
        [sys.executable, "-c", SDK_READ], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rows) == len(LIVE)  # the old sandbox gave 11 here: two superseded versions kept
    assert {r["id"]: r["expected"] for r in rows} == LIVE | {"row-2": "two", "row-late": 0}
