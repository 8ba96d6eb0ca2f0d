"""`migrate --follow` lag under a steady writer: a sandbox in its own process with 20 ms of latency;
a writer puts ~2,000 rows/s into the source's project logs for ~30 s, stamping each row with its
write time; an independent sampler polls the destination by BTQL (keyset on _pagination_key) and
records when each row became visible there. Prints median and p99 seconds behind (visible - written;
sampler resolution 0.25 s) beside the lag the tool itself reported on its per-pass lines.

    .venv/bin/python -m bench.follow_bench [--rate 2000] [--seconds 30] [--interval 2]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import threading
import time

import httpx

from bench.common import BIN, KEYS, env_for, sandbox, scratch, set_faults
from braintrust_migrate.btql import Query, cmp

TICK_S = 0.05
MAX_INSERT = 1000
POLL_S = 0.25
LAG_LINE = re.compile(r"follow: pass (\d+), ([\d,]+) rows / ([\d.]+)s behind")


def client(url: str, side: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEYS[side]}"}, timeout=60)


class Writer(threading.Thread):
    def __init__(self, url: str, project_id: str, rate: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.url, self.project_id, self.rate, self.seconds = url, project_id, rate, seconds
        self.written: dict[str, float] = {}

    def run(self) -> None:
        per_tick = max(1, int(self.rate * TICK_S))
        started, n = time.monotonic(), 0
        with client(self.url, "source") as c:
            while (elapsed := time.monotonic() - started) < self.seconds:
                due = int(elapsed / TICK_S) + 1  # ticks owed: a slow insert is caught up, the rate holds
                while n < due * per_tick:
                    now = time.time()
                    owed = min(due * per_tick - n, MAX_INSERT)  # behind: the owed rows in one insert
                    events = [{"id": f"f-{n + k}", "input": {"n": n + k}, "metadata": {"written_at": now}}
                              for k in range(owed)]  # fmt: skip
                    c.post(
                        f"/v1/project_logs/{self.project_id}/insert", json={"events": events}
                    ).raise_for_status()
                    self.written.update({e["id"]: now for e in events})
                    n += owed
                time.sleep(max(0.0, (due * TICK_S) - (time.monotonic() - started)))


class Sampler(threading.Thread):
    """When each row became visible in the destination, by its own BTQL reads."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.visible: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with client(self.url, "dest") as c:
            project_id = None
            last: str | None = None
            while not self.stop.is_set():
                if project_id is None:
                    found = [p for p in c.get("/v1/project").json()["objects"] if p["name"] == "follow-bench"]
                    project_id = found[0]["id"] if found else None
                if project_id is not None:
                    while True:
                        query = Query("project_logs", [project_id], select=["id", "_pagination_key"],
                                      sort=[("_pagination_key", "asc")], limit=5000)  # fmt: skip
                        if last:
                            query.where(cmp("_pagination_key", ">", last))
                        rows = c.post("/btql", json=query.body()).raise_for_status().json()["data"]
                        seen = time.time()
                        for row in rows:
                            self.visible.setdefault(row["id"], seen)
                        if rows:
                            last = rows[-1]["_pagination_key"]
                        if len(rows) < 5000:
                            break
                self.stop.wait(POLL_S)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=2000, help="rows per second into the source")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=2.0, help="migration_follow_interval")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    work = scratch("bench-follow-")
    with sandbox(work / "sandbox.db") as url:
        with client(url, "source") as c:
            project = c.post("/v1/project", json={"name": "follow-bench"}).raise_for_status().json()
            seed = [{"id": f"s-{i}", "input": {"seed": i}} for i in range(1000)]
            c.post(f"/v1/project_logs/{project['id']}/insert", json={"events": seed}).raise_for_status()
        set_faults(url, None, {"latency_ms": args.latency_ms, "max_concurrent_per_key": 50,
                               "exclude_paths": ["/_sandbox"]})  # fmt: skip
        env = env_for(url, "source", "dest", work / "state", MIGRATION_FOLLOW_INTERVAL=str(args.interval))
        proc = subprocess.Popen([str(BIN / "braintrust-migrate"), "migrate", "--follow"],
                                env=env, cwd=work, stderr=subprocess.PIPE, text=True)  # fmt: skip
        lags: list[tuple[float, int, float]] = []  # (time, rows behind, seconds behind) from the tool
        first_pass = threading.Event()

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                if match := LAG_LINE.search(line):
                    lags.append((time.time(), int(match[2].replace(",", "")), float(match[3])))
                    first_pass.set()

        threading.Thread(target=read_stderr, daemon=True).start()
        sampler = Sampler(url)
        sampler.start()
        if not first_pass.wait(120):
            raise SystemExit("migrate --follow never reported a pass")
        writer = Writer(url, project["id"], args.rate, args.seconds)
        started = time.time()
        writer.start()
        writer.join()
        ended = time.time()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not set(writer.written) <= set(sampler.visible):
            time.sleep(0.2)
        caught_up = time.time()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
        sampler.stop.set()
        report = json.loads(
            max(
                (work / "state").glob("*/runs/*/migration_report.json"), key=lambda p: p.stat().st_mtime
            ).read_text()
        )
    behind = sorted(sampler.visible[i] - t for i, t in writer.written.items() if i in sampler.visible)
    missing = len(writer.written) - len(behind)
    during = [lag for lag in lags if started <= lag[0] <= ended]
    print(
        f"writer   : {len(writer.written)} rows in {ended - started:.1f} s ({len(writer.written) / (ended - started):.0f} rows/s)"
    )
    if behind:
        p99 = behind[min(len(behind) - 1, int(len(behind) * 0.99))]
        print(f"observed : seconds behind median {statistics.median(behind):.2f}, p99 {p99:.2f}, max {behind[-1]:.2f};"
              f" {missing} rows never seen; caught up {caught_up - ended:.1f} s after the writer stopped")  # fmt: skip
    if during:
        print(f"tool     : {len(during)} passes while writing; rows behind median {statistics.median(r for _, r, _ in during):.0f}"
              f" max {max(r for _, r, _ in during)}; seconds behind median {statistics.median(s for _, _, s in during):.2f}"
              f" max {max(s for _, _, s in during):.2f}")  # fmt: skip
    follow = report.get("follow") or {}
    print(f"report   : exit {code}, passes {follow.get('passes')}, rows copied while following {follow.get('rows_copied')},"
          f" last lag {follow.get('last_lag')}, stopped by {follow.get('stopped_by')}, failed {report['failed']}")  # fmt: skip


if __name__ == "__main__":
    main()
