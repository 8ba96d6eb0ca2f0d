"""The oracle itself: after a real migration, every kind of damage done to the
destination (or the source) by hand is reported in the right category."""

from __future__ import annotations

import pytest

from braintrust_migrate.btql import Query
from tests.integration.engine.harness import migrate, seed
from tests.integration.events.helpers import client, feedback
from tests.oracle import compare_orgs, fingerprint


def counts(result) -> dict[str, int]:
    return {k: len(v) for k, v in result.differences.items()}


async def test_every_kind_of_damage_is_reported(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    await migrate(url, src, dst, tmp_path, map_users=True)
    before = compare_orgs(url, src.api_key, dst.api_key)
    assert before.objects_compared > 100 and before.rows_compared > 300 and before.comments_compared > 0
    untouched = fingerprint(url, src.api_key)
    with client(url, dst) as c, client(url, src) as s:
        prompt = c.get("/v1/prompt", params={"limit": 1}).json()["objects"][0]
        c.patch(f"/v1/prompt/{prompt['id']}", json={"description": "edited by hand"}).raise_for_status()
        tag = c.get("/v1/project_tag", params={"limit": 1}).json()["objects"][0]
        c.delete(f"/v1/project_tag/{tag['id']}").raise_for_status()
        project = c.get("/v1/project", params={"limit": 1}).json()["objects"][0]
        source_project = s.get("/v1/project", params={"project_name": project["name"]}).json()["objects"][0]
        dataset = c.get("/v1/dataset", params={"project_id": project["id"]}).json()["objects"][0]
        c.patch(f"/v1/dataset/{dataset['id']}", json={"metadata": {"leak": source_project["id"]}})
        query = Query("project_logs", [project["id"]], limit=1)
        row = c.post("/btql", json=query.body()).raise_for_status().json()["data"][0]
        tampered = {k: row[k] for k in ("id", "span_id", "root_span_id")} | {"output": "tampered"}
        c.post(f"/v1/project_logs/{project['id']}/insert", json={"events": [tampered]}).raise_for_status()
    feedback(url, dst, "project_logs", project["id"], [{"id": row["id"], "comment": "one too many"}])
    acl = {"object_type": "project", "object_id": project["id"], "user_id": dst.user_id, "permission": "read"}
    with client(url, dst) as c:
        c.post("/v1/acl", json=acl).raise_for_status()
    after = compare_orgs(url, src.api_key, dst.api_key)
    grew = {k for k, n in counts(after).items() if n > counts(before).get(k, 0)}
    expected = {"objects", "missing objects", "rows", "comments", "source ids in the destination"}
    assert expected | {"unexpected destination objects"} <= grew, after.summary()
    with pytest.raises(AssertionError, match="edited by hand"):
        after.assert_equal()
    # Reading both sides wrote nothing to the source; a write to it changes its fingerprint.
    assert fingerprint(url, src.api_key) == untouched
    with client(url, src) as s:
        s.patch(f"/v1/project/{source_project['id']}", json={"description": "touched"}).raise_for_status()
    assert fingerprint(url, src.api_key) != untouched
