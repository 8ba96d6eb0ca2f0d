"""Without BTQL, rows are read through /fetch newest first. Rows updated while the pages are read
move to the front: a reader that does not pin the version it started at skips rows that slid past
its cursor. Pinned, it reads every row once, as it was when the copy started."""

from __future__ import annotations

from braintrust_migrate.client import ApiClient
from braintrust_migrate.source.reader import FetchReader
from tests.integration.events.helpers import client, insert


class NoneSeen:
    def has(self, row_id: str) -> bool:
        return False


async def test_rows_updated_between_pages_are_read_once_at_the_starting_version(sandbox_server, sandbox_orgs):
    url, src = sandbox_server.url, sandbox_orgs.source
    with client(url, src) as c:
        dataset = c.post("/v1/project", json={"name": "snap"}).json()["id"]
    ids = [f"r{i:02d}" for i in range(12)]
    for row_id in ids:  # one transaction each, so the order is the insertion order
        insert(url, src, "project_logs", dataset, [{"id": row_id, "input": "v1"}])

    api = ApiClient(side="source", base_url=url, api_key=src.api_key)
    reader = FetchReader(api, "project_logs", dataset, 3, NoneSeen())
    read: list[dict] = []
    async with api:
        async for page in reader.pages():
            read += page.rows
            if len(read) == 3:
                # The oldest rows are updated: they become the newest, ahead of the cursor.
                insert(url, src, "project_logs", dataset, [{"id": i, "input": "v2"} for i in ids[:6]])
                insert(url, src, "project_logs", dataset, [{"id": "late", "input": "v1"}])

    assert sorted(row["id"] for row in read) == ids
    assert {row["input"] for row in read} == {"v1"}
