"""Event streaming against a sandbox with 20 ms of latency and a 429 limit at 50
concurrent requests, beside a raw-copy baseline in the same run.

    .venv/bin/python -m bench.events_bench [--scale 1.0]

Scale 1: 200k log rows (~1 KiB, traces of 1-20 spans), 20 experiments x 5k rows,
10 datasets x 5k rows. Prints wall time, rows/s, peak RSS of the migrate process and
requests sent, for both the tool and the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

from bench.common import (
    BIN,
    KEYS,
    Poster,
    add_pin_argument,
    configure_pinning,
    env_for,
    measure,
    sandbox,
    scratch,
    set_faults,
)

FILLER = "The quick brown fox jumps over the lazy dog. " * 12


def log_rows(start: int, count: int, rng: random.Random) -> list[dict]:
    rows, i = [], start
    while len(rows) < count:
        spans = min(rng.randint(1, 20), count - len(rows))
        root = f"t{i}"
        for s in range(spans):
            row = {"id": f"log-{i}-{s}", "span_id": f"{root}-{s}", "root_span_id": f"{root}-0",
                   "input": {"q": FILLER[: rng.randint(100, 500)]}, "output": {"a": FILLER[: rng.randint(100, 500)]},
                   "metadata": {"model": "gpt-x", "span": s}, "metrics": {"start": i, "end": i + 1, "tokens": s * 10},
                   "span_attributes": {"name": f"span {s}", "type": "llm" if s else "task"}}  # fmt: skip
            if s:
                row["span_parents"] = [f"{root}-0"]
            rows.append(row)
        i += 1
    return rows


async def populate(url: str, scale: float) -> int:
    rng = random.Random(1)
    poster = Poster(url, KEYS["source"], 4)
    post = poster.post
    project = await post("/v1/project", {"name": "bench"})
    jobs, total = [], 0
    n_logs = int(200_000 * scale)
    for start in range(0, n_logs, 1000):
        jobs.append(
            post(
                f"/v1/project_logs/{project['id']}/insert",
                {"events": log_rows(start * 20, min(1000, n_logs - start), rng)},
            )
        )
    total += n_logs
    for kind, count in (("experiment", 20), ("dataset", 10)):
        per = int(5000 * scale)
        for n in range(count):
            made = await post(f"/v1/{kind}", {"project_id": project["id"], "name": f"{kind} {n}"})
            for start in range(0, per, 1000):
                events = [{"id": f"{kind}-{n}-{i}", "input": {"q": FILLER[:300]}, "expected": FILLER[:200],
                           **({"output": FILLER[:300], "scores": {"s": 0.5}} if kind == "experiment" else {})}
                          for i in range(start, min(per, start + 1000))]  # fmt: skip
                jobs.append(post(f"/v1/{kind}/{made['id']}/insert", {"events": events}))
            total += per
    await asyncio.gather(*jobs)
    await poster.aclose()
    return total


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str, str]:
    """Wall seconds and peak RSS (MiB) of one command, on the client core when pinned."""
    run = measure(cmd, env, cwd)
    if run.code != 0:
        print(run.stderr[-3000:])
    return run.wall, run.rss_mb, run.stdout, run.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--max-concurrent", type=int, default=50, help="sandbox 429 limit per key")
    parser.add_argument("--no-baseline", action="store_true", help="skip the raw-copy baseline (memory runs)")
    add_pin_argument(parser)
    args = parser.parse_args()
    print(configure_pinning(not args.no_pin))
    work = scratch("bench-events-")
    with sandbox(work / "sandbox.db") as url:
        started = time.perf_counter()
        rows = asyncio.run(populate(url, args.scale))
        print(f"source: {rows} rows written in {time.perf_counter() - started:.1f} s")
        set_faults(url, None, {"latency_ms": args.latency_ms, "max_concurrent_per_key": args.max_concurrent,
                               "exclude_paths": ["/_sandbox"]})  # fmt: skip
        concurrency, page, batch = 16, 1000, 1000
        base = None
        if not args.no_baseline:
            command = [sys.executable, "-m", "bench.raw_copy_baseline", url, KEYS["source"], KEYS["baseline"]]
            seconds, rss, out, _ = timed([*command, str(concurrency), str(page), str(batch)], {}, Path.cwd())
            base = json.loads(out.strip().splitlines()[-1])
            print(
                f"baseline : {base['rows']} rows in {seconds:.1f} s wall ({base['rows_per_s']} rows/s copying), peak RSS {rss:.0f} MiB"
            )
        env = env_for(url, "source", "dest", work / "state", MIGRATION_MAX_CONCURRENT_RESOURCES=str(concurrency),
                      MIGRATION_EVENT_PAGE_SIZE=str(page), MIGRATION_INSERT_BATCH_ROWS=str(batch))  # fmt: skip
        seconds, rss, _, _ = timed([str(BIN / "braintrust-migrate"), "migrate"], env, work)
        report = json.loads(
            max(
                (work / "state").glob("*/runs/*/migration_report.json"), key=lambda p: p.stat().st_mtime
            ).read_text()
        )
        written = sum(t["rows_written"] for t in report["events"]["totals"].values())
        http = report["http"]
        requests = http["source"]["requests"] + http["dest"]["requests"]
        print(f"migrate  : {written} rows in {seconds:.1f} s wall ({written / seconds:.0f} rows/s overall), "
              f"peak RSS {rss:.0f} MiB, {requests} requests, 429s {http['source']['rate_limited'] + http['dest']['rate_limited']}, "
              f"failed {report['failed']}")  # fmt: skip
        if base:
            print(f"ratio to baseline (rows/s): {(written / seconds) / (base['rows'] / base['seconds']):.2f}")


if __name__ == "__main__":
    main()
