"""Reading and writing event rows of sandbox orgs over HTTP, for the streaming tests."""

from __future__ import annotations

from typing import Any

import httpx

from braintrust_migrate.sandbox.objects.admin import SandboxOrg

# Fields that differ by design between a row and its copy.
SERVER_FIELDS = {"_xact_id", "_pagination_key", "project_id", "experiment_id", "dataset_id", "org_id", "log_id",
                 "comments", "audit_data", "is_root", "origin", "_async_scoring_state", "classifications"}  # fmt: skip


def client(url: str, org: SandboxOrg) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=60)


def insert(url: str, org: SandboxOrg, kind: str, container: str, rows: list[dict[str, Any]]) -> list[str]:
    with client(url, org) as c:
        response = c.post(f"/v1/{kind}/{container}/insert", json={"events": rows})
        response.raise_for_status()
        return response.json()["row_ids"]


def feedback(url: str, org: SandboxOrg, kind: str, container: str, items: list[dict[str, Any]]) -> None:
    with client(url, org) as c:
        c.post(f"/v1/{kind}/{container}/feedback", json={"feedback": items}).raise_for_status()


def all_rows(url: str, org: SandboxOrg, kind: str, container: str) -> dict[str, dict[str, Any]]:
    """The latest version of every live row, by id, through BTQL keyset paging."""
    rows: dict[str, dict[str, Any]] = {}
    after = None
    with client(url, org) as c:
        while True:
            lines = ["select: *", f"from: {kind}('{container}') spans"]
            if after:
                lines.append(f"filter: _pagination_key > '{after}'")
            lines += ["sort: _pagination_key asc", "limit: 1000"]
            data = (
                c.post("/btql", json={"query": "\n".join(lines), "fmt": "json"})
                .raise_for_status()
                .json()["data"]
            )
            for row in data:
                assert row["id"] not in rows, f"row {row['id']} returned twice"
                rows[row["id"]] = row
            if len(data) < 1000:
                return rows
            after = data[-1]["_pagination_key"]


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in SERVER_FIELDS and v is not None}


def comment_texts(row: dict[str, Any]) -> list[str]:
    texts = []
    for comment in row.get("comments") or []:
        body = comment.get("comment")
        texts.append(body.get("text") if isinstance(body, dict) else body)
    return sorted(map(str, texts))
