"""Reading one org over plain HTTP: every object list, every event row (BTQL keyset
paging), and objects or dataset rows as of a version. Nothing here comes from the tool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from braintrust_migrate.btql import Query, cmp

PAGE = 200
ROW_PAGE = 1000
# Views hang off these object types; the oracle lists them per object.
VIEW_OWNERS = (("project", "projects"), ("experiment", "experiments"), ("dataset", "datasets"))
# name -> (list path, pages with starting_after)
LISTS: dict[str, tuple[str, bool]] = {
    "roles": ("/v1/role", True),
    "groups": ("/v1/group", True),
    "users": ("/v1/user", True),
    "ai_secrets": ("/v1/ai_secret", True),
    "environments": ("/environment", False),
    "env_vars": ("/v1/env_var", False),
    "projects": ("/v1/project", True),
    "datasets": ("/v1/dataset", True),
    "experiments": ("/v1/experiment", True),
    "prompts": ("/v1/prompt", True),
    "functions": ("/v1/function", True),
    "project_tags": ("/v1/project_tag", True),
    "project_scores": ("/v1/project_score", True),
    "project_automations": ("/v1/project_automation", True),
    "span_iframes": ("/v1/span_iframe", True),
    "mcp_servers": ("/v1/mcp_server", True),
    "dataset_snapshots": ("/v1/dataset_snapshot", True),
}
# Row containers: the list they come from and the BTQL source kind.
CONTAINERS = (("projects", "project_logs"), ("experiments", "experiment"), ("datasets", "dataset"))


@dataclass
class OrgData:
    org: dict[str, Any]
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # (btql kind, container id) -> row id -> row
    rows: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)


class OrgReader:
    def __init__(self, url: str, api_key: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> OrgReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.http.get(path, params=params).raise_for_status().json()

    def list(
        self, path: str, cursor: bool = True, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        while True:
            query = dict(params or {})
            if cursor:
                query["limit"] = PAGE
                if after:
                    query["starting_after"] = after
            body = self.get(path, query)
            page = body if isinstance(body, list) else body["objects"]
            out.extend(page)
            if not cursor or len(page) < PAGE:
                return out
            after = page[-1]["id"]

    def rows(self, kind: str, container: str, version: str | None = None) -> dict[str, dict[str, Any]]:
        """The latest version (or the version as of `version`) of every live row, by id."""
        rows: dict[str, dict[str, Any]] = {}
        after = None
        while True:
            q = Query(kind, [container], sort=[("_pagination_key", "asc")], limit=ROW_PAGE)
            if after:
                q.where(cmp("_pagination_key", ">", after))
            body: dict[str, Any] = q.body()
            if version is not None:
                body["version"] = version
            data = self.http.post("/btql", json=body).raise_for_status().json()["data"]
            for row in data:
                if row["id"] in rows:
                    raise AssertionError(f"BTQL returned row {row['id']} twice in {kind} {container}")
                rows[row["id"]] = row
            if len(data) < ROW_PAGE:
                return rows
            after = data[-1]["_pagination_key"]

    def at_version(self, kind_path: str, object_id: str, version: str) -> dict[str, Any] | None:
        response = self.http.get(f"{kind_path}/{object_id}", params={"version": version})
        return response.json() if response.status_code == 200 else None

    def attachment_bytes(self, ref: dict[str, Any], org_id: str) -> bytes:
        """The blob an attachment reference stands for, downloaded through its signed URL."""
        params = {k: ref[k] for k in ("key", "filename", "content_type")} | {"org_id": org_id}
        location = self.get("/attachment", params)["downloadUrl"]
        return httpx.get(location, timeout=60).raise_for_status().content

    def attachment_json(self, ref: dict[str, Any], org_id: str) -> Any:
        """The JSON an attachment reference stands for."""
        return orjson.loads(self.attachment_bytes(ref, org_id))

    def read_all(self, with_rows: bool = True) -> OrgData:
        orgs = self.get("/v1/organization")["objects"]
        if len(orgs) != 1:
            raise AssertionError(f"the oracle needs a key that sees one org, this one sees {len(orgs)}")
        data = OrgData(orgs[0])
        for name, (path, cursor) in LISTS.items():
            data.objects[name] = self.list(path, cursor)
        views: list[dict[str, Any]] = []
        for object_type, owners in VIEW_OWNERS:
            for owner in data.objects[owners]:
                params = {"object_type": object_type, "object_id": owner["id"]}
                views += self.list("/v1/view", True, params)
        data.objects["views"] = views
        data.objects["acls"] = self.list("/v1/acl/list_org", True)
        if with_rows:
            for owners, kind in CONTAINERS:
                for owner in data.objects[owners]:
                    data.rows[(kind, owner["id"])] = self.rows(kind, owner["id"])
        return data
