"""What waits for what while objects are written: a deferred reference is patched in as soon as
its target exists (not after every object of the org); with --overlap-rows a small container's
rows are not held back by a container written much later that its shared read would have included;
and what pins a dataset version waits for that dataset's rows, not for every dataset's.

Both are judged from outside: a poller reads the destination over HTTP while the run goes on, and
a chain of experiments (each the base of the next, each creation delayed by the sandbox) keeps the
object phase open long after what is being watched."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.harness import migrate
from tests.integration.events.helpers import all_rows, client, insert

DELAY_MS = 400  # each delayed creation; the chain below holds the object phase open ~CHAIN times longer
CHAIN = 6


def chain_of_experiments(c: httpx.Client, project: str) -> str:
    """CHAIN experiments, each the base of the next (created one after another); the last's name."""
    base = None
    for n in range(CHAIN):
        body: dict[str, Any] = {"project_id": project, "name": f"chain{n}"}
        if base:
            body["base_exp_id"] = base
        base = c.post("/v1/experiment", json=body).json()["id"]
    return f"chain{CHAIN - 1}"


async def watch(url: str, key: str, seen: Any, finished: Any, stop: asyncio.Event) -> bool | None:
    """Poll the destination until `seen(http)` holds; then whether `finished(http)` held already."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        while not stop.is_set():
            if await seen(http):
                return await finished(http)
            await asyncio.sleep(0.05)
    return None


async def named(http: httpx.AsyncClient, path: str, name: str) -> dict[str, Any] | None:
    objects = (await http.get(path, params={"limit": 1000})).json()["objects"]
    return next((o for o in objects if o.get("name") == name), None)


async def run_watched(url, src, dst, tmp_path, seen, finished, **settings) -> tuple[Any, bool | None]:
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(url, dst.api_key, seen, finished, stop))
    try:
        result = await migrate(url, src, dst, tmp_path / "state", **settings)
    finally:
        stop.set()
    return result, await watcher


def delay_creations(server, org, *paths: str) -> None:
    server.set_faults(
        FaultSettings(latency_ms=DELAY_MS, include_paths=paths, methods=("POST",)), org=org.name
    )


async def test_a_deferred_reference_is_patched_in_once_its_target_exists(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src) as c:
        a = c.post("/v1/project", json={"name": "A"}).json()["id"]
        b = c.post("/v1/project", json={"name": "B"}).json()["id"]
        tool = c.post(
            "/v1/function",
            json={"project_id": b, "name": "tool", "slug": "tool", "function_data": {"type": "prompt"}},
        ).json()["id"]
        c.post(
            "/v1/prompt",
            json={"project_id": a, "name": "uses", "slug": "uses",
                  "prompt_data": {"tool_functions": [{"type": "function", "id": tool}]}},
        )  # fmt: skip
        last = chain_of_experiments(c, b)
    # The function in B is written after the prompt in A that names it (a reference across
    # projects is not waited for), so the prompt is written without it and patched in later.
    delay_creations(sandbox_server, dst, "/v1/function", "/v1/experiment")

    async def patched(http: httpx.AsyncClient) -> bool:
        prompt = await named(http, "/v1/prompt", "uses")
        return bool(prompt and (prompt.get("prompt_data") or {}).get("tool_functions"))

    async def chain_written(http: httpx.AsyncClient) -> bool:
        return await named(http, "/v1/experiment", last) is not None

    result, chain_done_first = await run_watched(url, src, dst, tmp_path, patched, chain_written)
    sandbox_server.clear_faults()
    assert result.ok, result.summary_path.read_text()
    assert chain_done_first is False  # patched while the chain was still being written
    with client(url, dst) as c:
        [prompt] = [p for p in c.get("/v1/prompt").json()["objects"] if p["name"] == "uses"]
        [function] = [f for f in c.get("/v1/function").json()["objects"] if f["name"] == "tool"]
    assert prompt["prompt_data"]["tool_functions"] == [{"type": "function", "id": function["id"]}]
    outcome = next(o for o in result.report["objects"] if o["name"] == "uses")
    assert "references patched in after creation" in outcome["notes"]


async def test_overlapped_rows_of_a_small_container_do_not_wait_for_a_later_one(
    sandbox_server, sandbox_orgs, tmp_path
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src) as c:
        a = c.post("/v1/project", json={"name": "Quick"}).json()["id"]
        b = c.post("/v1/project", json={"name": "Slow"}).json()["id"]
        early = c.post("/v1/experiment", json={"project_id": a, "name": "early"}).json()["id"]
        last = chain_of_experiments(c, b)
        late = {
            e["name"]: e["id"] for e in c.get("/v1/experiment", params={"project_id": b}).json()["objects"]
        }
    insert(url, src, "experiment", early, [{"id": f"r{i}", "input": i} for i in range(5)])
    insert(url, src, "experiment", late[last], [{"id": f"l{i}", "input": i} for i in range(5)])
    delay_creations(sandbox_server, dst, "/v1/experiment")

    async def early_rows_landed(http: httpx.AsyncClient) -> bool:
        experiment = await named(http, "/v1/experiment", "early")
        if experiment is None:
            return False
        query = f"select: id | from: experiment('{experiment['id']}') | limit: 10"
        rows = (await http.post("/btql", json={"query": query, "fmt": "json"})).json()["data"]
        return len(rows) == 5

    async def last_written(http: httpx.AsyncClient) -> bool:
        return await named(http, "/v1/experiment", last) is not None

    result, last_first = await run_watched(
        url, src, dst, tmp_path, early_rows_landed, last_written, migration_overlap_rows=True
    )
    sandbox_server.clear_faults()
    assert result.ok, result.summary_path.read_text()
    assert last_first is False  # the early rows were copied while the chain was still being written
    containers = {c["name"]: c for c in result.report["events"]["containers"]}
    assert containers["early"]["rows_written"] == 5 and containers[last]["rows_written"] == 5


SLOW_PINS = 5  # versions of the slow dataset pinned: written one after another, each delayed


async def test_a_pin_waits_for_its_own_dataset_not_for_every_dataset(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src) as c:
        project = c.post("/v1/project", json={"name": "Pins"}).json()["id"]
        quick = c.post("/v1/dataset", json={"project_id": project, "name": "quick"}).json()["id"]
        slow = c.post("/v1/dataset", json={"project_id": project, "name": "slow"}).json()["id"]

    def pin_experiment(name: str, dataset: str) -> None:
        version = max((r["_xact_id"] for r in all_rows(url, src, "dataset", dataset).values()), key=int)
        body = {"project_id": project, "name": name, "dataset_id": dataset, "dataset_version": version}
        with client(url, src) as c:
            c.post("/v1/experiment", json=body).raise_for_status()

    insert(url, src, "dataset", quick, [{"id": "q", "input": 1}])
    pin_experiment("on quick", quick)
    with client(url, src) as c:  # a snapshot is created only once its version exists
        version = c.get("/v1/experiment", params={"experiment_name": "on quick"}).json()["objects"][0]
        snapshot = {"dataset_id": quick, "name": "quick v1", "xact_id": version["dataset_version"]}
        c.post("/v1/dataset_snapshot", json=snapshot).raise_for_status()
    for n in range(SLOW_PINS):  # each pin of `slow` is written, then read back, before the next
        insert(url, src, "dataset", slow, [{"id": f"s{n}", "input": n}])
        pin_experiment(f"on slow {n}", slow)
    # Every dataset write and read-back in the destination is slow: `slow` takes SLOW_PINS times
    # longer than `quick`.
    sandbox_server.set_faults(
        FaultSettings(latency_ms=DELAY_MS, include_paths=("/v1/dataset/",), methods=("POST",)), org=dst.name
    )

    async def quick_pinned(http: httpx.AsyncClient) -> bool:
        experiment = await named(http, "/v1/experiment", "on quick")
        snapshot = await named(http, "/v1/dataset_snapshot", "quick v1")
        return bool(experiment and experiment.get("dataset_version") and snapshot)

    async def slow_copied(http: httpx.AsyncClient) -> bool:
        dataset = await named(http, "/v1/dataset", "slow")
        if dataset is None:
            return False
        query = f"select: id | from: dataset('{dataset['id']}') | limit: 100"
        rows = (await http.post("/btql", json={"query": query, "fmt": "json"})).json()["data"]
        return len(rows) == SLOW_PINS

    result, slow_first = await run_watched(url, src, dst, tmp_path, quick_pinned, slow_copied)
    sandbox_server.clear_faults()
    assert result.ok, result.summary_path.read_text()
    assert slow_first is False  # pinned while the slow dataset's versions were still being written
    with client(url, dst) as c:
        experiments = {e["name"]: e for e in c.get("/v1/experiment").json()["objects"]}
        datasets = {d["name"]: d["id"] for d in c.get("/v1/dataset").json()["objects"]}
        [snapshot] = c.get("/v1/dataset_snapshot", params={"dataset_id": datasets["quick"]}).json()["objects"]
    assert snapshot["xact_id"] == experiments["on quick"]["dataset_version"]
    # Each pin names the destination version holding exactly the rows of its source version.
    for name, dataset, rows in [("on quick", "quick", {"q"})] + [
        (f"on slow {n}", "slow", {f"s{i}" for i in range(n + 1)}) for n in range(SLOW_PINS)
    ]:
        version = experiments[name]["dataset_version"]
        with client(url, dst) as c:
            body = {"limit": 100, "version": version}
            data = c.post(f"/v1/dataset/{datasets[dataset]}/fetch", json=body).raise_for_status().json()
        assert {r["id"] for r in data["events"]} == rows, name


async def test_a_pin_on_a_dataset_this_run_does_not_copy_waits_for_nothing(
    sandbox_server, sandbox_orgs, tmp_path
):
    """An experiment of a selected project pins a dataset of a project left out: the run ends
    (it hung, waiting for rows no stream copies), and the pin is dropped with its note."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    with client(url, src) as c:
        kept = c.post("/v1/project", json={"name": "Kept"}).json()["id"]
        other = c.post("/v1/project", json={"name": "Other"}).json()["id"]
        dataset = c.post("/v1/dataset", json={"project_id": other, "name": "elsewhere"}).json()["id"]
    insert(url, src, "dataset", dataset, [{"id": "e", "input": 1}])
    version = next(iter(all_rows(url, src, "dataset", dataset).values()))["_xact_id"]
    with client(url, src) as c:
        body = {
            "project_id": kept,
            "name": "pins elsewhere",
            "dataset_id": dataset,
            "dataset_version": version,
        }
        c.post("/v1/experiment", json=body).raise_for_status()
    result = await asyncio.wait_for(
        migrate(url, src, dst, tmp_path / "state", migration_projects=["Kept"]), 60
    )
    assert result.report["events"]["containers"]  # the selected project's rows were copied
    with client(url, dst) as c:
        [experiment] = c.get("/v1/experiment").json()["objects"]
    assert experiment["name"] == "pins elsewhere" and not experiment.get("dataset_version")
