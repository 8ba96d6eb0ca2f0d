"""A pin to a version of an object another state folder completed since.

State "a" wrote prompt Q without its tool (in a project not selected) and P pinned to that version.
State "b" then completed Q; P's destination still pins the incomplete version (as if "b" was killed
before rewriting P). A run from "a" again finds Q complete ("unchanged": its own write), but its
record of Q's version is the incomplete one: P must still end pinned to the version that holds
what the source version holds."""

from __future__ import annotations

from tests.integration.engine.cli_run import http
from tests.integration.engine.harness import migrate
from tests.oracle import compare_orgs

MESSAGES = {"prompt": {"type": "chat", "messages": [{"role": "user", "content": "hi"}]}}


def _seed(url, src):
    with http(url, src) as c:
        a = c.post("/v1/project", json={"name": "A"}).raise_for_status().json()["id"]
        b = c.post("/v1/project", json={"name": "B"}).raise_for_status().json()["id"]
        # A's dataset makes A the first project of a run, so Q is reached before its tool exists.
        c.post("/v1/dataset", json={"project_id": a, "name": "d"}).raise_for_status()
        tool = (
            c.post(
                "/v1/prompt", json={"project_id": b, "name": "tool", "slug": "tool", "prompt_data": MESSAGES}
            )
            .raise_for_status()
            .json()
        )
        q = (
            c.post(
                "/v1/prompt",
                json={
                    "project_id": a,
                    "name": "Q",
                    "slug": "q",
                    "prompt_data": {**MESSAGES, "tool_functions": [{"type": "function", "id": tool["id"]}]},
                },
            )
            .raise_for_status()
            .json()
        )
        origin = {"prompt_id": q["id"], "project_id": a, "prompt_version": q["_xact_id"]}
        c.post(
            "/v1/prompt",
            json={"project_id": a, "name": "P", "slug": "p", "prompt_data": {**MESSAGES, "origin": origin}},
        ).raise_for_status()


def _dest_prompt(url, dst, slug):
    with http(url, dst) as c:
        return c.get("/v1/prompt", params={"slug": slug}).raise_for_status().json()["objects"][0]


async def test_a_pin_recorded_before_another_state_completed_its_target_is_renewed(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    _seed(url, src)
    resources = {"migration_resources": ["projects", "prompts", "datasets"]}
    await migrate(url, src, dst, tmp_path / "a", migration_projects=["A"], **resources)
    incomplete = _dest_prompt(url, dst, "p")["prompt_data"]["origin"]["prompt_version"]
    assert (await migrate(url, src, dst, tmp_path / "b", **resources)).ok
    p = _dest_prompt(url, dst, "p")
    with http(url, dst) as c:  # "b" was killed before it rewrote P
        origin = {**p["prompt_data"]["origin"], "prompt_version": incomplete}
        c.patch(f"/v1/prompt/{p['id']}", json={"prompt_data": {**p["prompt_data"], "origin": origin}})

    again = await migrate(url, src, dst, tmp_path / "a", migration_max_concurrent=1, **resources)

    assert again.ok, again.summary_path.read_text()
    pins = compare_orgs(url, src.api_key, dst.api_key).differences.get("version pins", [])
    assert pins == [], pins
