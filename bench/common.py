"""Bench helpers: a sandbox in its own process, admin calls, and timing a CLI run."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
ADMIN_KEY = "bench-admin-key"
KEYS = {
    "source": "sk-bench-source-0001",
    "dest": "sk-bench-dest-0002",
    "baseline": "sk-bench-baseline-0003",
    "restore": "sk-bench-restore-0004",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def sandbox(db: Path) -> Any:
    """`braintrust-migrate sandbox serve` in a process of its own, with a file database."""
    port = free_port()
    orgs = [arg for name, key in KEYS.items() for arg in ("--org", f"{name}={key}")]
    proc = subprocess.Popen(
        [
            str(BIN / "braintrust-migrate"),
            "sandbox",
            "serve",
            "--port",
            str(port),
            "--db",
            str(db),
            "--admin-key",
            ADMIN_KEY,
            *orgs,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/v1", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def set_faults(url: str, org: str | None, settings: dict[str, Any] | None) -> None:
    headers = {"X-Sandbox-Admin-Key": ADMIN_KEY}
    httpx.put(
        f"{url}/_sandbox/faults", json={"org": org, "settings": settings}, headers=headers
    ).raise_for_status()


def writes(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_sandbox/writes", headers={"X-Sandbox-Admin-Key": ADMIN_KEY}).json()


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, exit code and stderr of one CLI run; its peak RSS via rusage of children."""
    started = time.perf_counter()
    out = subprocess.run([str(BIN / "braintrust-migrate"), *args], env={**os.environ, **env}, cwd=cwd,
                         capture_output=True, text=True)  # fmt: skip
    return time.perf_counter() - started, out.returncode, out.stderr


def peak_child_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def env_for(url: str, source: str, dest: str, state: Path, **extra: str) -> dict[str, str]:
    return {
        "BT_SOURCE_URL": url,
        "BT_DEST_URL": url,
        "BT_SOURCE_API_KEY": KEYS[source],
        "BT_DEST_API_KEY": KEYS[dest],
        "MIGRATION_STATE_DIR": str(state),
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        **extra,
    }
