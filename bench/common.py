"""Bench helpers: a sandbox in its own process, admin calls, timing a CLI run, CPU pinning
(sandbox and client on different cores, as a real API does not share the client's CPU) and
repeated measurements reported as median and spread."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import math
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

BIN = Path(sys.executable).parent
ADMIN_KEY = "bench-admin-key"
KEYS = {
    "source": "sk-bench-source-0001",
    "dest": "sk-bench-dest-0002",
    "baseline": "sk-bench-baseline-0003",
    "restore": "sk-bench-restore-0004",
}


def scratch(prefix: str) -> Path:
    """A work folder removed when the bench exits: a 1M-row run leaves ~13 GB of databases."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, work, True)
    return work


class Poster:
    """JSON POSTs to the sandbox as one org, at most `at_once` in flight: how benches seed an org."""

    def __init__(self, url: str, key: str, at_once: int) -> None:
        self.client = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300,
                                        transport=AiohttpTransport(limits=httpx.Limits(max_connections=8)))  # fmt: skip
        self.slots = asyncio.Semaphore(at_once)

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.slots:
            response = await self.client.post(path, content=orjson.dumps(body))
            response.raise_for_status()
            return orjson.loads(response.content)

    async def aclose(self) -> None:
        await self.client.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Cores for the sandbox and for the client side (tool, baseline, ceiling client); None: unpinned.
_PIN: tuple[set[int], set[int]] | None = None


def add_pin_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin sandbox and client to separate cores"
    )


def add_tool_src_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tool-src", type=Path, help="run the tool from this src folder (e.g. a `git archive` of an "
                        "earlier commit) for a before/after pair; the sandbox and the bench stay the working tree's")  # fmt: skip


def with_tool_src(env: dict[str, str], tool_src: Path | None) -> dict[str, str]:
    """`env` with the tool's package taken from `tool_src` (first on PYTHONPATH), when given."""
    return {**env, "PYTHONPATH": str(tool_src.resolve())} if tool_src else env


def configure_pinning(enabled: bool) -> str:
    """Pin the sandbox to the first allowed core and clients to the others (>= 2 cores); a line for the log."""
    global _PIN
    cores = sorted(os.sched_getaffinity(0))
    _PIN = ({cores[0]}, set(cores[1:])) if enabled and len(cores) >= 2 else None
    if _PIN is None:
        return f"cpu pinning off ({len(cores)} cores allowed); {load_line()}"
    return f"cpu pinning: sandbox on {sorted(_PIN[0])}, client on {sorted(_PIN[1])}; {load_line()}"


def load_line() -> str:
    """The machine's load average (1, 5, 15 min): numbers taken on a busy machine say so."""
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def _pinned(side: int) -> Callable[[], None] | None:
    if _PIN is None:
        return None
    cores = _PIN[side]
    return lambda: os.sched_setaffinity(0, cores)


@contextmanager
def sandbox(db: Path, extra_orgs: dict[str, str] | None = None) -> Any:
    """`braintrust-migrate sandbox serve` in a process of its own (on the sandbox core when pinned),
    with a file database; `extra_orgs` (name -> key) besides KEYS."""
    port = free_port()
    all_orgs = {**KEYS, **(extra_orgs or {})}
    orgs = [arg for name, key in all_orgs.items() for arg in ("--org", f"{name}={key}")]
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
        preexec_fn=_pinned(0),
    )
    url = f"http://127.0.0.1:{port}"
    _SANDBOX_PIDS[url] = proc.pid
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


_SANDBOX_PIDS: dict[str, int] = {}


def sandbox_cpu(url: str) -> float:
    """CPU seconds (user + sys) the sandbox process at `url` has used so far: is it the limit?"""
    fields = Path(f"/proc/{_SANDBOX_PIDS[url]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


@dataclass(frozen=True)
class Sample:
    """One child run: wall seconds, its own CPU seconds (user, sys) and peak RSS, from wait4."""

    wall: float
    user: float
    sys: float
    rss_mb: float
    code: int
    stdout: str
    stderr: str
    # (seconds since start, RSS MiB) every RSS_EVERY seconds: whether a peak is a plateau or a spike
    rss_series: tuple[tuple[float, float], ...] = ()

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    def rss_shape(self) -> str:
        """The sampled RSS in one line: its median and 90th percentile, and when its maximum came."""
        if len(self.rss_series) < 2:
            return "RSS not sampled (run too short)"
        values = sorted(mb for _, mb in self.rss_series)
        at, top = max(self.rss_series, key=lambda point: point[1])
        p90 = values[math.ceil(0.9 * len(values)) - 1]
        return (f"RSS sampled every {RSS_EVERY:.0f} s: median {statistics.median(values):.0f} MiB, p90 {p90:.0f}, "
                f"max {top:.0f} at {at:.0f} s of {self.wall:.0f} s")  # fmt: skip


RSS_EVERY = 5.0


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _sample_rss(
    timer_pid: int, started: float, done: threading.Event, out: list[tuple[float, float]]
) -> None:
    """RSS of the command `time` runs (its one child), until `done`."""
    while not done.wait(RSS_EVERY):
        try:
            children = Path(f"/proc/{timer_pid}/task/{timer_pid}/children").read_text().split()
        except OSError:
            return
        if children and (mb := _rss_mb(int(children[0]))) is not None:
            out.append((time.perf_counter() - started, mb))


TIME_MARK = "BENCH_RUSAGE"


def measure(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    """Run one command on the client core(s), through /usr/bin/time: a child forked straight from
    this (large) bench process would count our resident pages in its peak RSS (ru_maxrss is kept
    across exec), so the small `time` process forks it instead."""
    timer = ["/usr/bin/time", "-f", f"{TIME_MARK} %U %S %M"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([*timer, *cmd], env={**os.environ, **(env or {})}, cwd=cwd, stdout=out,
                                stderr=err, preexec_fn=_pinned(1))  # fmt: skip
        series: list[tuple[float, float]] = []
        done = threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(proc.pid, started, done, series), daemon=True)
        sampler.start()
        proc.wait()
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        stdout = out_text(out)
        lines = out_text(err).splitlines()
    usage = next((line.split() for line in reversed(lines) if line.startswith(TIME_MARK)), None)
    user, system, rss_kb = (float(usage[1]), float(usage[2]), float(usage[3])) if usage else (0.0, 0.0, 0.0)
    stderr = "\n".join(line for line in lines if not line.startswith(TIME_MARK))
    return Sample(wall, user, system, rss_kb / 1024, proc.returncode, stdout, stderr, tuple(series))


def out_text(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode(errors="replace")


def cli(*args: str) -> list[str]:
    return [str(BIN / "braintrust-migrate"), *args]


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    def fmt(self, spec: str = ".2f", unit: str = "") -> str:
        return f"{self.median:{spec}}{unit} ({self.low:{spec}}-{self.high:{spec}})"


def spread(values: Sequence[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values))


def repeat(runs: int, one: Callable[[int], Sample], label: str) -> list[Sample]:
    """`one(i)` for i in range(runs) (at least 3: a median needs company); failed runs are shown."""
    samples = []
    for i in range(max(runs, 3)):
        sample = one(i)
        print(f"  {label} run {i + 1}: {sample.wall:.2f} s wall, {sample.cpu:.2f} s cpu, "
              f"{sample.rss_mb:.0f} MiB, exit {sample.code}", flush=True)  # fmt: skip
        if sample.code != 0:
            print(sample.stderr[-2000:])
        samples.append(sample)
    return samples
