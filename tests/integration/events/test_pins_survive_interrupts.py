"""Experiments keep their dataset version pin through interrupted runs and state-dir
switches. An experiment is written before its dataset's versions exist and re-pinned after
the rows; runs killed in between, under other state dirs, leave it pinless and (to a state
that never owned it) a conflict over another field: the final run must still pin it.

Runs are killed in-process like a SIGKILL: after the Nth destination write lands, every
request of that run dies. The judgement is plain HTTP (and the independent oracle)."""

from __future__ import annotations

import contextlib
from typing import Any

from braintrust_migrate.client.api import ApiClient
from tests.integration.engine.harness import list_all, migrate, seed
from tests.integration.events.test_dataset_versions_exact import rows_at
from tests.oracle import compare_orgs

# (state dir, destination writes before the kill): found by a seeded search; the final run
# uses state "c", which never owned the experiment the other runs left pinless.
KILLS = [("a", 3), ("c", 10), ("a", 62), ("a", 15)]


class Killed(BaseException):
    """Not an Exception: nothing in the tool catches it, like a SIGKILL."""


class Kill:
    def __init__(self) -> None:
        self.after: int | None = None
        self.clients: list[ApiClient] = []
        self.dead: set[int] = set()


def killing_send(kill: Kill, send: Any) -> Any:
    async def wrapped(self: ApiClient, call: Any) -> Any:
        if id(self) in kill.dead:
            raise Killed
        if self not in kill.clients:
            kill.clients.append(self)
        response = await send(self, call)
        method, path = call.method, call.path
        is_write = method != "GET" and not path.endswith(("/fetch", "/btql"))
        if kill.after is not None and is_write and self.side == "dest":
            kill.after -= 1
            if kill.after <= 0:  # this run is dead: its other tasks die at their next request
                kill.dead.update(id(c) for c in kill.clients)
                raise Killed
        return response

    return wrapped


def pinless(url: str, src, dst) -> list[str]:
    """Destination experiments whose source has a dataset version pin, but they have none."""
    pinned = {e["name"] for e in list_all(url, src, "/v1/experiment") if e.get("dataset_version")}
    return [e["name"] for e in list_all(url, dst, "/v1/experiment")
            if e["name"] in pinned and not e.get("dataset_version")]  # fmt: skip


async def test_dataset_pins_survive_kills_and_state_dir_switches(
    sandbox_server, sandbox_orgs, tmp_path, monkeypatch
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small", 1)
    kill = Kill()
    monkeypatch.setattr(ApiClient, "_attempt", killing_send(kill, ApiClient._attempt))
    for state, writes in KILLS:
        kill.after = writes
        with contextlib.suppress(Killed):
            await migrate(url, src, dst, tmp_path / state)
        kill.after = None
    # The case this test is about was reached: an experiment was left without its pin.
    assert pinless(url, src, dst), "the interrupts no longer leave a pinless experiment"
    result = await migrate(url, src, dst, tmp_path / "c")
    assert result.ok, result.summary_path.read_text()

    assert pinless(url, src, dst) == []
    src_exps = {e["name"]: e for e in list_all(url, src, "/v1/experiment") if e.get("dataset_version")}
    for dest_exp in list_all(url, dst, "/v1/experiment"):
        source_exp = src_exps.get(dest_exp["name"])
        if source_exp is None:
            continue
        want = rows_at(url, src, source_exp["dataset_id"], source_exp["dataset_version"])
        got = rows_at(url, dst, dest_exp["dataset_id"], dest_exp["dataset_version"])
        assert got == want, f"{dest_exp['name']}: the pinned version reads other rows"
    oracle = compare_orgs(url, src.api_key, dst.api_key)
    dropped = [d for d in oracle.differences.get("version pins", []) if "dataset version pin" in d]
    assert dropped == [], dropped
