"""One process against N shard processes on the same data (README: Scaling out), in one run.

    .venv/bin/python -m bench.shards_bench [--scale 0.3] [--shards 2] [--no-pin]

The events benchmark's org (bench/events_bench.py; scale 1 = 350k rows) with 20 ms of latency and a
429 limit at 50 in flight per key, migrated twice into two fresh orgs: `--shard objects`, then the
rows by `--shard 0/1` (one process) or `--shard I/N` for every I at once, then the finishing plain
run. Prints per rows phase: wall, rows/s, the tool's CPU (all its processes) and the sandbox's CPU,
each as a share of the wall, so the limit can be read off (a side near 100% of its cores is it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

from bench.common import (
    _pinned,
    add_pin_argument,
    cli,
    configure_pinning,
    env_for,
    load_line,
    measure,
    sandbox,
    sandbox_cpu,
    scratch,
    set_faults,
    spread,
)
from bench.events_bench import populate

RUNS = 3  # each side, alternating (one, sharded, one, ...) so the machine's load drifts over both


def targets(runs: int) -> dict[str, str]:
    return {f"{side}-{i}": f"sk-bench-{side}-{i:04d}" for side in ("one", "sharded") for i in range(runs)}


def rows_phase(url: str, env: dict[str, str], count: int) -> dict[str, float]:
    """N shard processes at once: wall, summed tool CPU, sandbox CPU over the same wall."""
    cpu_before = sandbox_cpu(url)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            cli("migrate", "--shard", f"{i}/{count}"),
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_pinned(1),  # the client core(s), as every bench client
        )
        for i in range(count)
    ]
    tool_cpu = 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        tool_cpu += usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"shard failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    wall = time.perf_counter() - started
    return {"wall": wall, "tool_cpu": tool_cpu, "sandbox_cpu": sandbox_cpu(url) - cpu_before}


def rows_per_shard(state: Path, count: int) -> list[int]:
    """Rows each shard wrote (its reports): a container is never split, so the largest bounds the gain."""
    per = [0] * count
    for report in state.glob(f"*/shards/*-of-{count}/runs/*/migration_report.json"):
        data = json.loads(report.read_text())
        index = int(data["shard"].split("/")[0])
        per[index] += sum(t["rows_written"] for t in data["events"]["totals"].values())
    return per


def one_side(url: str, work: Path, target: str, key: str, count: int) -> dict[str, float]:
    state = work / f"state-{target}"
    env = env_for(url, "source", "dest", state, MIGRATION_MAX_CONCURRENT_RESOURCES="16")
    env["BT_DEST_API_KEY"] = key
    objects = measure(cli("migrate", "--shard", "objects"), env, work)
    assert objects.code == 0, objects.stderr[-2000:]
    phase = rows_phase(url, env, count)
    finish = measure(cli("migrate"), env, work)
    assert finish.code == 0, finish.stderr[-2000:]
    per = rows_per_shard(state, count)
    return {
        **phase,
        "rows": sum(per),
        "largest": max(per),
        "objects_wall": objects.wall,
        "finish_wall": finish.wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--runs", type=int, default=RUNS, help="runs of each side (median and spread)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--max-concurrent", type=int, default=50, help="sandbox 429 limit per key")
    add_pin_argument(parser)
    args = parser.parse_args()
    print(configure_pinning(not args.no_pin), flush=True)
    work = scratch("bench-shards-")
    runs = max(args.runs, 1)
    keys = targets(runs)
    with sandbox(work / "sandbox.db", keys) as url:
        rows = asyncio.run(populate(url, args.scale))
        print(f"source: {rows} rows", flush=True)
        set_faults(url, None, {"latency_ms": args.latency_ms, "max_concurrent_per_key": args.max_concurrent,
                               "exclude_paths": ["/_sandbox"]})  # fmt: skip
        rates: dict[str, list[float]] = {"one": [], "sharded": []}
        ratios, bounds = [], []
        for i in range(runs):
            for side, count in (("one", 1), ("sharded", args.shards)):
                r = one_side(url, work, f"{side}-{i}", keys[f"{side}-{i}"], count)
                rates[side].append(r["rows"] / r["wall"])
                print(
                    f"run {i + 1}, {count} process(es): {r['rows']} rows in {r['wall']:.1f} s"
                    f" ({r['rows'] / r['wall']:.0f} rows/s); tool CPU {r['tool_cpu']:.1f} s"
                    f" ({r['tool_cpu'] / r['wall']:.0%} of one core, {r['tool_cpu'] / r['rows'] * 1e6:.0f} µs/row),"
                    f" sandbox CPU {r['sandbox_cpu']:.1f} s ({r['sandbox_cpu'] / r['wall']:.0%} of one core);"
                    f" objects {r['objects_wall']:.1f} s, finishing run {r['finish_wall']:.1f} s; {load_line()}",
                    flush=True,
                )
                if side == "sharded":
                    bounds.append(r["rows"] / r["largest"])
            ratios.append(rates["sharded"][-1] / rates["one"][-1])
        one, many, ratio = spread(rates["one"]), spread(rates["sharded"]), spread(ratios)
        print(f"1 process: {one.fmt('.0f', ' rows/s')}; {args.shards} shards: {many.fmt('.0f', ' rows/s')}")
        print(f"rows/s ratio, {args.shards} shards / 1 process (median of pairs): {ratio.fmt()}")
        print(f"bound from the split (all rows / the largest shard's): {spread(bounds).fmt()}")
        print(f"{len(os.sched_getaffinity(0))} cores; {load_line()}")


if __name__ == "__main__":
    main()
