"""Driving the installed `braintrust-migrate migrate` against sandbox orgs, and reading them over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from braintrust_migrate.btql import Query
from braintrust_migrate.sandbox.objects.admin import SandboxOrg

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))


def cli_env(url: str, source: SandboxOrg, dest: SandboxOrg, state_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "BT_SOURCE_URL": url,
        "BT_DEST_URL": url,
        "BT_SOURCE_API_KEY": source.api_key,
        "BT_DEST_API_KEY": dest.api_key,
        "MIGRATION_STATE_DIR": str(state_dir),
        "MIGRATION_RETRY_DELAY": "0.01",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SCRIPT, "migrate", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.umask(0o022),
    )


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = start(env, *args)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def http(url: str, org: SandboxOrg) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=30)


def seed_small(url: str, org: SandboxOrg, rows: int = 20) -> dict[str, Any]:
    """One project holding one dataset of `rows` rows."""
    with http(url, org) as c:
        project = c.post("/v1/project", json={"name": "state-p"}).raise_for_status().json()
        dataset = (
            c.post("/v1/dataset", json={"name": "state-d", "project_id": project["id"]})
            .raise_for_status()
            .json()
        )
        events = [{"id": f"row-{i}", "input": {"i": i}, "expected": i * 2} for i in range(rows)]
        for at in range(0, rows, 200):
            c.post(
                f"/v1/dataset/{dataset['id']}/insert", json={"events": events[at : at + 200]}
            ).raise_for_status()
    return dataset


def dataset_row_count(url: str, org: SandboxOrg, name: str = "state-d") -> int:
    """Rows the org's dataset holds, by BTQL (0 when the dataset does not exist yet)."""
    with http(url, org) as c:
        found = [d for d in c.get("/v1/dataset").raise_for_status().json()["objects"] if d["name"] == name]
        if not found:
            return 0
        query = Query("dataset", [found[0]["id"]], select=["id"], limit=100000)
        data = c.post("/btql", json=query.body()).raise_for_status().json()["data"]
        return len({row["id"] for row in data})
