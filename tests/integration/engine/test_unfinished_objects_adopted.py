"""Objects an earlier run created without some references (deferred for a cycle or a link to
another project, then killed before patching them in) are completed by a run that starts
from a new, empty state; a destination object that differs in any other way stays a conflict.

Judged by plain HTTP against the sandbox (and by the independent oracle, tests/oracle)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest

from braintrust_migrate.engine.runner import Runner
from tests.integration.engine.harness import migrate
from tests.oracle import compare_orgs

CODE = {
    "type": "code",
    "data": {
        "type": "inline",
        "runtime_context": {"runtime": "python", "version": "3.11"},
        "code": "def handler(input, **kwargs):\n    return input\n",
    },
}
CHAT = {"prompt": {"type": "chat", "messages": [{"role": "user", "content": "{{input}}"}]}}


def client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def ok(response: httpx.Response) -> Any:
    response.raise_for_status()
    return response.json()


def by_slug(http: httpx.Client, path: str) -> dict[str, dict[str, Any]]:
    return {o["slug"]: o for o in ok(http.get(path, params={"limit": 200}))["objects"]}


def seed_references(http: httpx.Client) -> None:
    """Project alpha links to project beta (soft, cross-project) and holds a prompt/function cycle."""
    alpha = ok(http.post("/v1/project", json={"name": "alpha"}))
    beta = ok(http.post("/v1/project", json={"name": "beta"}))
    base = ok(
        http.post(
            "/v1/prompt", json={"project_id": beta["id"], "name": "base", "slug": "base", "prompt_data": CHAT}
        )
    )
    lookup = ok(
        http.post(
            "/v1/function",
            json={
                "project_id": beta["id"],
                "name": "lookup",
                "slug": "lookup",
                "function_type": "tool",
                "function_data": CODE,
            },
        )
    )
    tool = {"type": "function", "id": lookup["id"]}
    caller = ok(
        http.post(
            "/v1/prompt",
            json={
                "project_id": alpha["id"],
                "name": "caller",
                "slug": "caller",
                "prompt_data": {
                    **CHAT,
                    "tool_functions": [tool],
                    "origin": {
                        "prompt_id": base["id"],
                        "project_id": beta["id"],
                        "prompt_version": base["_xact_id"],
                    },
                },
            },
        )
    )
    # The cycle: caller uses cyc_tool as a tool, cyc_tool's origin is caller.
    cyc = ok(
        http.post(
            "/v1/function",
            json={
                "project_id": alpha["id"],
                "name": "cyc_tool",
                "slug": "cyc_tool",
                "function_type": "tool",
                "function_data": CODE,
                "origin": {"object_type": "prompt", "object_id": caller["id"]},
            },
        )
    )
    data = copy.deepcopy(caller["prompt_data"])
    data["tool_functions"].append({"type": "function", "id": cyc["id"]})
    ok(http.patch(f"/v1/prompt/{caller['id']}", json={"prompt_data": data}))
    nodes = {
        "input": {"type": "input"},
        "call": {"type": "function", "function": {"function_id": lookup["id"]}},
        "output": {"type": "output"},
    }
    ok(
        http.post(
            "/v1/function",
            json={
                "project_id": alpha["id"],
                "name": "agent",
                "slug": "agent",
                "function_type": "task",
                "function_data": {"type": "graph", "nodes": nodes, "edges": {}},
            },
        )
    )


def assert_references_present(url: str, dst_key: str) -> None:
    with client(url, dst_key) as http:
        prompts, functions = by_slug(http, "/v1/prompt"), by_slug(http, "/v1/function")
    caller, base = prompts["caller"], prompts["base"]
    tool_ids = {t["id"] for t in caller["prompt_data"]["tool_functions"]}
    assert tool_ids == {functions["lookup"]["id"], functions["cyc_tool"]["id"]}
    origin = caller["prompt_data"]["origin"]
    assert origin["prompt_id"] == base["id"]
    assert origin["prompt_version"] == base["_xact_id"]  # pinned to the copied version
    assert functions["cyc_tool"].get("origin") == {"object_type": "prompt", "object_id": caller["id"]}
    call = functions["agent"]["function_data"]["nodes"]["call"]
    assert call["function"]["function_id"] == functions["lookup"]["id"]


def actions(result) -> dict[str, str]:
    return {o["name"]: o["action"] for o in result.report["objects"] if o["kind"] in ("prompt", "function")}


async def test_objects_left_unpatched_by_a_stopped_run_are_completed_with_a_new_state(
    sandbox_server, sandbox_orgs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src.api_key) as http:
        seed_references(http)

    async def stopped(self: Runner, *args: Any) -> None:  # the run dies before patching references in
        return None

    with monkeypatch.context() as patch:
        patch.setattr(Runner, "_settle_one", stopped)  # the patches made while objects are written
        patch.setattr(Runner, "_settle_deferred", stopped)  # and those after them
        await migrate(url, src, dst, tmp_path / "state-a")
    with client(url, dst.api_key) as http:
        half_made = by_slug(http, "/v1/function")["cyc_tool"]
    assert half_made.get("origin") is None  # the cycle deferred it, deterministically

    result = await migrate(url, src, dst, tmp_path / "state-b")
    assert actions(result)["cyc_tool"] == "updated"
    assert_references_present(url, dst.api_key)
    compare_orgs(url, src.api_key, dst.api_key).assert_equal()


def half_made_copies(url: str, dst_key: str) -> None:
    """Replace (PUT: same id) complete destination objects by what a creation deferring their
    links writes: the tool list item, the origin's prompt and the graph node removed (refs.py)."""
    with client(url, dst_key) as http:
        caller = by_slug(http, "/v1/prompt")["caller"]
        lookup = by_slug(http, "/v1/function")["lookup"]
        agent = by_slug(http, "/v1/function")["agent"]
        data = copy.deepcopy(caller["prompt_data"])
        data["tool_functions"] = [t for t in data["tool_functions"] if t["id"] != lookup["id"]]
        del data["origin"]["prompt_id"], data["origin"]["prompt_version"]  # a "key" drop, with its pin
        keep = ("project_id", "name", "slug")
        put = ok(http.put("/v1/prompt", json={**{k: caller[k] for k in keep}, "prompt_data": data}))
        graph = copy.deepcopy(agent["function_data"])
        del graph["nodes"]["call"]
        body = {k: agent[k] for k in (*keep, "function_type")}
        put_fn = ok(http.put("/v1/function", json={**body, "function_data": graph}))
    assert (put["id"], put_fn["id"]) == (caller["id"], agent["id"])


async def test_hand_made_half_copies_are_completed_and_pins_translate(
    sandbox_server, sandbox_orgs, tmp_path: Path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src.api_key) as http:
        seed_references(http)
    await migrate(url, src, dst, tmp_path / "state-a")
    half_made_copies(url, dst.api_key)
    result = await migrate(url, src, dst, tmp_path / "state-b")
    done = actions(result)
    assert done["caller"] == "updated" and done["agent"] == "updated", done
    assert done["base"] == "unchanged" and done["lookup"] == "unchanged", done
    assert_references_present(url, dst.api_key)
    compare_orgs(url, src.api_key, dst.api_key).assert_equal()


@pytest.mark.parametrize("edit", ["description", "other_tool"])
async def test_a_destination_object_differing_otherwise_stays_a_conflict(
    sandbox_server, sandbox_orgs, tmp_path: Path, edit: str
):
    """Lacking a link AND edited otherwise (a field, or a link the source does not have): not ours."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src.api_key) as http:
        seed_references(http)
    await migrate(url, src, dst, tmp_path / "state-a")
    half_made_copies(url, dst.api_key)
    with client(url, dst.api_key) as http:
        caller = by_slug(http, "/v1/prompt")["caller"]
        if edit == "description":
            change: dict[str, Any] = {"description": "edited in the destination"}
        else:
            base = by_slug(http, "/v1/function")["agent"]
            data = copy.deepcopy(caller["prompt_data"])
            data["tool_functions"].append({"type": "function", "id": base["id"]})
            change = {"prompt_data": data}
        edited = ok(http.patch(f"/v1/prompt/{caller['id']}", json=change))
    result = await migrate(url, src, dst, tmp_path / "state-b")
    caller_outcome = next(o for o in result.report["objects"] if o["name"] == "caller")
    assert caller_outcome["action"] == "conflict"
    assert caller_outcome["reason"] == "exists_with_different_content"
    with client(url, dst.api_key) as http:
        after = by_slug(http, "/v1/prompt")["caller"]
    assert after["prompt_data"] == edited["prompt_data"] and after.get("description") == edited.get(
        "description"
    )
    assert "prompt_id" not in after["prompt_data"]["origin"]
