"""The official SDK's push and read paths against the sandbox: ``project.publish()`` (prompts, an
inline tool, an LLM scorer) posts to ``/insert-functions``; what lands is read back through plain
HTTP and through ``load_prompt``; a local ``Eval`` (Python scorer) built on the published prompt
sends its rows, which ``init(open=True)`` reads. The SDK runs in a subprocess per call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer

SCRIPT = Path(__file__).with_name("sdk_push_script.py")
SDK_ENV = {
    "BRAINTRUST_SYNC_FLUSH": "true",
    "BRAINTRUST_NUM_RETRIES": "0",
    "BRAINTRUST_DISABLE_ATEXIT_FLUSH": "true",
}


def run_sdk(
    mode: str, server: SandboxServer, org: SandboxOrg, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINTRUST_", "BT_"))}
    env.update(SDK_ENV, RT_URL=server.url, RT_KEY=org.api_key, **extra)
    return subprocess.run(
        [sys.executable, str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=120
    )


def sdk(mode: str, server: SandboxServer, org: SandboxOrg, **extra: str) -> Any:
    done = run_sdk(mode, server, org, **extra)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def client(server: SandboxServer, org: SandboxOrg) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {org.api_key}"})


def project_id(http: httpx.Client, name: str = "push-app") -> str:
    [project] = [p for p in http.get("/v1/project").json()["objects"] if p["name"] == name]
    return project["id"]


def prompts(http: httpx.Client, pid: str) -> dict[str, dict[str, Any]]:
    response = http.get("/v1/prompt", params={"project_id": pid})
    assert response.status_code == 200, response.text
    return {p["slug"]: p for p in response.json()["objects"]}


def test_publish_lands_as_prompts_and_load_prompt_reads_them(
    sandbox_server: SandboxServer, sandbox_org: SandboxOrg
) -> None:
    answer = sdk("publish", sandbox_server, sandbox_org)
    assert [(f["slug"], f["object_type"], f["found_existing"]) for f in answer["functions"]] == [
        ("greeter", "prompt", False),
        ("judge", "prompt", False),
    ]
    with client(sandbox_server, sandbox_org) as http:
        pid = project_id(http)
        stored = prompts(http, pid)
        assert set(stored) == {"greeter", "judge"}
        greeter, judge = stored["greeter"], stored["judge"]
        assert greeter["name"] == "Greeter" and greeter["log_id"] == "p" and greeter["_xact_id"]
        assert greeter["prompt_data"]["prompt"]["messages"] == [
            {"role": "system", "content": "Hello {{name}}"}
        ]
        assert json.loads(greeter["prompt_data"]["prompt"]["tools"])[0]["function"]["name"] == "weather"
        assert greeter["prompt_data"]["options"]["params"] == {"temperature": 0}
        assert judge["function_type"] == "scorer"
        assert judge["prompt_data"]["parser"] == {
            "type": "llm_classifier",
            "use_cot": True,
            "choice_scores": {"Y": 1, "N": 0},
        }
        # An LLM scorer / prompt is not a code function: nothing in the function store.
        assert http.get("/v1/function", params={"project_id": pid}).json()["objects"] == []
    loaded = sdk("load", sandbox_server, sandbox_org)
    assert loaded == {
        "slug": "greeter",
        "messages": [{"content": "Hello Ada", "role": "system"}],
        "model": "gpt-4o-mini",
        "id": greeter["id"],
    }


def test_if_exists_error_replace_ignore(sandbox_server: SandboxServer, sandbox_org: SandboxOrg) -> None:
    sdk("publish", sandbox_server, sandbox_org)
    with client(sandbox_server, sandbox_org) as http:
        pid = project_id(http)
        first = prompts(http, pid)["greeter"]
        # The SDK sends if_exists: null; like `braintrust push`'s default it means "error".
        again = run_sdk("publish", sandbox_server, sandbox_org, RT_GREETING="changed")
        assert again.returncode != 0
        assert "slug 'greeter' already exists" in again.stderr and "if_exists: error" in again.stderr
        assert prompts(http, pid)["greeter"] == first  # the whole request was refused
        ignored = sdk("publish", sandbox_server, sandbox_org, RT_IF_EXISTS="ignore", RT_GREETING="changed")
        assert {f["found_existing"] for f in ignored["functions"]} == {True}
        assert prompts(http, pid)["greeter"] == first
        sdk("publish", sandbox_server, sandbox_org, RT_IF_EXISTS="replace", RT_GREETING="Hi {{name}}")
        replaced = prompts(http, pid)["greeter"]
        assert replaced["id"] == first["id"] and replaced["_xact_id"] != first["_xact_id"]
        assert replaced["prompt_data"]["prompt"]["messages"][0]["content"] == "Hi {{name}}"
    assert sdk("load", sandbox_server, sandbox_org)["messages"][0]["content"] == "Hi Ada"


def test_code_tool_reference_needs_the_tool_pushed_first(
    sandbox_server: SandboxServer, sandbox_org: SandboxOrg
) -> None:
    # publish() never sends code (it needs `braintrust push` and a bundle), only the slug reference.
    done = run_sdk("publish", sandbox_server, sandbox_org, RT_WITH_CODE_TOOL="1")
    assert done.returncode != 0
    assert "tool_functions[0].slug: no function with slug 'adder'" in done.stderr
    with client(sandbox_server, sandbox_org) as http:
        assert prompts(http, project_id(http)) == {}


def test_push_shaped_code_tool_lands_as_function(
    sandbox_server: SandboxServer, sandbox_org: SandboxOrg
) -> None:
    """What `braintrust push` sends for a code tool (its bundle upload is not served)."""
    with client(sandbox_server, sandbox_org) as http:
        pid = http.post("/v1/project", json={"name": "push-app"}).json()["id"]
        tool = {
            "project_id": pid,
            "name": "adder",
            "slug": "adder",
            "description": None,
            "function_data": {
                "type": "code",
                "data": {
                    "type": "bundle",
                    "runtime_context": {"runtime": "python", "version": "3.11"},
                    "location": {"type": "function", "index": 0},
                    "bundle_id": "bundle-1",
                    "preview": "def add(a, b): return a + b",
                },
            },
            "function_type": "tool",
            "function_schema": {"parameters": {"type": "object"}},
            "if_exists": "error",
        }
        uses = {
            "project_name": "push-app",
            "name": "Uses adder",
            "slug": "uses-adder",
            "function_data": {"type": "prompt"},
            "prompt_data": {"tool_functions": [{"type": "slug", "project_id": pid, "slug": "adder"}]},
        }
        response = http.post("/insert-functions", json={"functions": [tool, uses]})
        assert response.status_code == 200, response.text
        [stored] = http.get("/v1/function", params={"project_id": pid}).json()["objects"]
        assert stored["function_type"] == "tool" and stored["slug"] == "adder"
        assert stored["function_data"] == tool["function_data"]
        assert stored["function_schema"] == {"parameters": {"type": "object"}}
        prompt = prompts(http, pid)["uses-adder"]
        assert prompt["prompt_data"]["tool_functions"] == [{"type": "function", "id": stored["id"]}]
        bad = http.post("/insert-functions", json={"functions": [{**tool, "if_exists": "merge"}]})
        assert bad.status_code == 400 and "functions[0].if_exists" in bad.json()["error"]


def test_local_eval_rows_arrive_and_init_open_reads_them(
    sandbox_server: SandboxServer, sandbox_org: SandboxOrg
) -> None:
    sdk("publish", sandbox_server, sandbox_org)
    summary = sdk("eval", sandbox_server, sandbox_org)
    assert summary == {"experiment": "local-eval", "scores": 0.5}
    rows = sdk("open", sandbox_server, sandbox_org)
    roots = sorted((r["input"], r["output"]) for r in rows if r["root"])
    assert roots == [("Ada", "Hello Ada"), ("Bob", "Hello Bob")]
    scores = sorted((r["input"]["input"], r["scores"]["exact"]) for r in rows if not r["root"])
    assert scores == [("Ada", 1.0), ("Bob", 0.0)]
