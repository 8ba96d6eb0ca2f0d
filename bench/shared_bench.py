"""Many small containers: shared reads against one stream per container, in one run.

    .venv/bin/python -m bench.shared_bench [--experiments 2000] [--rows-each 20] [--latency-ms 20]

One project with N experiments of a few rows each (the org of a team that runs many small evals)
and as many datasets of a few rows; 20 ms of latency and a 429 limit at 50 in flight per key.
It is migrated into fresh orgs, alternating the default (small containers share reads:
`MIGRATION_SHARED_READ_ROWS`) and `MIGRATION_SHARED_READ_ROWS=0` (every container alone), three
times each: wall, tool CPU, peak RSS and the requests each side made (from the run's report).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from bench.common import (
    KEYS,
    Poster,
    add_pin_argument,
    cli,
    configure_pinning,
    env_for,
    load_line,
    measure,
    sandbox,
    set_faults,
    spread,
)

RUNS = 3


async def populate(url: str, experiments: int, rows_each: int) -> int:
    poster = Poster(url, KEYS["source"], 8)
    post = poster.post
    project = await post("/v1/project", {"name": "many small"})

    async def one(kind: str, n: int) -> None:
        made = await post(f"/v1/{kind}", {"project_id": project["id"], "name": f"{kind} {n}"})
        events = [
            {"id": f"{n}-{i}", "input": {"q": f"question {i} " * 20}, "expected": i} for i in range(rows_each)
        ]
        await post(f"/v1/{kind}/{made['id']}/insert", {"events": events})

    await asyncio.gather(
        *(one(kind, n) for kind in ("experiment", "dataset") for n in range(experiments // 2))
    )
    await poster.aclose()
    return experiments * rows_each


def requests_of(report_dir: Path) -> tuple[int, int]:
    (report,) = report_dir.glob("**/migration_report.json")
    http = json.loads(report.read_text())["http"]
    return int(http["source"]["requests"]), int(http["dest"]["requests"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--experiments", type=int, default=2000, help="containers: half experiments, half datasets"
    )
    parser.add_argument("--rows-each", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--max-concurrent", type=int, default=50)
    add_pin_argument(parser)
    args = parser.parse_args()
    print(configure_pinning(not args.no_pin))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dests = {
            f"dest-{side}-{i}": f"sk-bench-{side}-{i:04d}"
            for side in ("shared", "alone")
            for i in range(RUNS)
        }
        with sandbox(work / "bench.db", extra_orgs=dests) as url:
            rows = asyncio.run(populate(url, args.experiments, args.rows_each))
            print(f"source: {args.experiments} containers x {args.rows_each} rows = {rows} rows")
            faults = {"latency_ms": args.latency_ms, "max_concurrent_per_key": args.max_concurrent}
            set_faults(url, None, faults)
            results: dict[str, list] = {"shared": [], "alone": []}
            for i in range(RUNS):
                for side, extra in (("shared", {}), ("alone", {"MIGRATION_SHARED_READ_ROWS": "0"})):
                    KEYS[f"dest-{side}-{i}"] = dests[f"dest-{side}-{i}"]
                    state = work / f"state-{side}-{i}"
                    env = env_for(url, "source", f"dest-{side}-{i}", state, **extra)
                    sample = measure(cli("migrate"), env)
                    src_req, dst_req = requests_of(state)
                    results[side].append((sample, src_req, dst_req))
                    print(f"  {side:6s} run {i + 1}: {sample.wall:6.2f} s wall, cpu {sample.cpu:5.2f} s, "
                          f"peak RSS {sample.rss_mb:4.0f} MiB, requests source {src_req} dest {dst_req}, "
                          f"exit {sample.code}", flush=True)  # fmt: skip
                    if sample.code != 0:
                        print(sample.stderr[-2000:])
    for side, runs in results.items():
        walls = spread([s.wall for s, _, _ in runs])
        print(f"{side:6s} wall {walls.fmt(unit=' s')}, cpu {spread([s.cpu for s, _, _ in runs]).fmt(unit=' s')}, "
              f"peak RSS {spread([s.rss_mb for s, _, _ in runs]).fmt('.0f', ' MiB')}, "
              f"requests {runs[0][1]} + {runs[0][2]}")  # fmt: skip
    shared, alone = (spread([s.wall for s, _, _ in results[k]]).median for k in ("shared", "alone"))
    print(f"shared / alone wall: {shared / alone:.2f}x | {load_line()}")


if __name__ == "__main__":
    main()
