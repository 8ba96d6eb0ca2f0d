"""End to end: a whole-org `migrate` (objects and rows together) beside the raw-copy baseline on the
same data, then `verify` of the same org; targets of issue #18 printed beside each number.

    .venv/bin/python -m bench.e2e_bench [--rows 100000] [--runs 3] [--no-pin]

The sandbox (`medium` profile + `--rows`, 20 ms latency, 429 above 50 in flight per key) runs in its
own process on one core, the tool and the baseline on the other. Runs alternate baseline / migrate
(each into an org of its own) so that drift in the machine's load hits both sides alike. The
sandbox's own insert and BTQL read ceilings are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from bench.common import (
    KEYS,
    Sample,
    add_pin_argument,
    add_tool_src_argument,
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
    with_tool_src,
)

TARGET_WALL_RATIO = 0.75  # migrate wall / raw-copy wall
TARGET_US_PER_ROW = 20.0
TARGET_RSS_MB = 300.0
TARGET_VERIFY_RATIO = 0.5  # verify wall / migrate wall
TARGET_CEILING_SHARE = 0.8  # at 1M rows: migrate rows/s / the sandbox's insert ceiling


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report_of(state: Path) -> dict:
    path = max(state.glob("*/runs/*/migration_report.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(path.read_text())


def failures(report: dict) -> str:
    """The distinct reasons of a report's failed objects and streams, counted (the work folder is
    deleted at exit: a 10M-row run's ~40 GB would fill the disk)."""
    reasons: Counter[str] = Counter()
    for error in report.get("errors", []):
        reasons[f"{error.get('type')}: {error.get('reason')} {str(error.get('error'))[:300]}"] += 1
    for c in report["events"]["containers"]:
        if c["status"] == "failed" or c["rows_failed"]:
            sample = c["failed_rows"][:1]
            reasons[f"{c['container']} rows: {c['error'] or ''} {str(sample)[:300]}"] += 1
    return "; ".join(f"{n}x {why}" for why, n in reasons.most_common(5)) or "(none listed)"


def timed(
    label: str, i: int, url: str, cmd: list[str], env: dict[str, str], cwd: Path
) -> tuple[Sample, float]:
    """One run, and the sandbox's CPU seconds meanwhile (near the wall time: the sandbox is the limit)."""
    before = sandbox_cpu(url)
    sample = measure(cmd, env, cwd)
    server = sandbox_cpu(url) - before
    print(f"  {label:<8} run {i + 1}: {sample.wall:6.2f} s wall, tool cpu {sample.cpu:5.2f} s "
          f"({sample.user:.2f} user + {sample.sys:.2f} sys), peak RSS {sample.rss_mb:4.0f} MiB, "
          f"sandbox cpu {server:5.2f} s ({server / sample.wall:.0%} of its core), exit {sample.code}",
          flush=True)  # fmt: skip
    print(f"           {sample.rss_shape()}", flush=True)
    if sample.code != 0:
        print(sample.stderr[-3000:])
    return sample, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="seeded event rows (medium profile)")
    parser.add_argument("--profile", default="medium")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (at least 3)")
    parser.add_argument("--verify-runs", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--max-concurrent", type=int, default=50, help="sandbox 429 limit per key")
    parser.add_argument("--concurrency", type=int, default=16, help="streams, for both sides")
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--ceiling-rows", type=int, default=50_000)
    add_tool_src_argument(parser)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the migrate and verify runs, e.g. MIGRATION_OVERLAP_ROWS=false")  # fmt: skip
    parser.add_argument("--migrate-only", action="store_true", help="one migrate (and --verify-runs verifies), no "
                        "raw copy: the memory check at 10M rows, where three orgs of each side do not fit on disk")  # fmt: skip
    add_pin_argument(parser)
    args = parser.parse_args()
    runs = 1 if args.migrate_only else max(args.runs, 3)
    print(configure_pinning(not args.no_pin))
    orgs = {f"dest{i}": f"sk-bench-e2e-dest-{i:04d}" for i in range(runs)}
    orgs |= {f"base{i}": f"sk-bench-e2e-base-{i:04d}" for i in range(runs)}
    orgs["ceiling"] = "sk-bench-e2e-ceiling"
    work = scratch("bench-e2e-")
    with sandbox(work / "sandbox.db", orgs) as url:
        seeded = measure(cli("sandbox", "seed", "--url", url, "--api-key", KEYS["source"], "--profile",
                             args.profile, "--rows", str(args.rows), "--seed", "1", "--json"))  # fmt: skip
        if seeded.code != 0:
            sys.exit(f"seeding failed: {seeded.stderr[-2000:]}")
        print(f"source: {args.profile} profile + --rows {args.rows} seeded in {seeded.wall:.1f} s")
        set_faults(url, None, {"latency_ms": args.latency_ms, "max_concurrent_per_key": args.max_concurrent,
                               "exclude_paths": ["/_sandbox"]})  # fmt: skip
        ceiling = measure([sys.executable, "-m", "bench.ceiling", url, orgs["ceiling"], "--rows",
                           str(args.ceiling_rows), "--batch", str(args.batch)])  # fmt: skip
        if ceiling.code != 0:
            sys.exit(f"ceiling failed: {ceiling.stderr[-2000:]}")
        ceil = json.loads(ceiling.stdout.strip().splitlines()[-1])
        print(f"sandbox ceiling (same faults, minimal client): insert {ceil['insert_rows_per_s']:,} rows/s, "
              f"BTQL read {ceil['read_rows_per_s']:,} rows/s ({ceil['rows']} rows of ~{ceil['bytes_per_row']} B)")  # fmt: skip

        base: list[Sample] = []
        tool: list[Sample] = []
        rows_written: list[int] = []
        for i in range(runs):
            if args.migrate_only:
                # No raw copy: a stand-in, so the loop and medians below need no second path.
                base.append(Sample(float("nan"), 0.0, 0.0, 0.0, 0, '{"rows": 0}', ""))
            else:
                command = [sys.executable, "-m", "bench.raw_copy_baseline", url, KEYS["source"], orgs[f"base{i}"],
                           str(args.concurrency), str(args.page), str(args.batch)]  # fmt: skip
                base.append(timed("raw copy", i, url, command, {}, Path.cwd())[0])
            env = env_for(url, "source", "dest", work / f"state{i}", BT_DEST_API_KEY=orgs[f"dest{i}"],
                          MIGRATION_MAX_CONCURRENT_RESOURCES=str(args.concurrency),
                          MIGRATION_EVENT_PAGE_SIZE=str(args.page), MIGRATION_INSERT_BATCH_ROWS=str(args.batch),
                          **dict(item.split("=", 1) for item in args.set))  # fmt: skip
            env = with_tool_src(env, args.tool_src)
            tool.append(timed("migrate", i, url, cli("migrate", "--map-users"), env, work)[0])
            report = report_of(work / f"state{i}")
            rows_written.append(sum(t["rows_written"] for t in report["events"]["totals"].values()))
            if report["failed"]:
                print(f"  migrate run {i + 1}: {report['failed']} failed; why: {failures(report)}")
        # A failed run is shown above and left out of the medians.
        pairs = [(t, b) for t, b in zip(tool, base, strict=True) if t.code == 0 and b.code == 0]
        base = [b for b in base if b.code == 0]
        tool = [t for t in tool if t.code == 0]
        if not base or not tool:
            sys.exit("no successful run on one side: nothing to compare")
        base_rows = json.loads(base[-1].stdout.strip().splitlines()[-1])["rows"]
        verify = [
            timed("verify", i, url, cli("verify", "--map-users"), env, work)[0]
            for i in range(args.verify_runs)
        ]

    rows = rows_written[-1]
    print(
        f"\nrows: migrate wrote {rows:,} per run, raw copy {base_rows:,} (median and min-max of {len(tool)} "
        f"migrate and {len(base)} raw-copy runs that succeeded)"
    )
    raw_wall, mig_wall = spread([s.wall for s in base]), spread([s.wall for s in tool])
    pair = spread([t.wall / b.wall for t, b in pairs] or [float("nan")])
    if not args.migrate_only:
        print(f"raw copy wall    {raw_wall.fmt(unit=' s')}; cpu {spread([s.cpu for s in base]).fmt(unit=' s')}; "
              f"peak RSS {spread([s.rss_mb for s in base]).fmt('.0f', ' MiB')}")  # fmt: skip
    print(f"migrate wall     {mig_wall.fmt(unit=' s')}; {rows / mig_wall.median:,.0f} rows/s")
    if not args.migrate_only:
        ratio = mig_wall.median / raw_wall.median
        print(f"  wall / raw     {ratio:.2f}x (per-run pairs {pair.fmt()})   target <= {TARGET_WALL_RATIO}x: "
              f"{mark(ratio <= TARGET_WALL_RATIO)}")  # fmt: skip
    us = spread([s.cpu / max(rows, 1) * 1e6 for s in tool])
    print(f"  tool CPU/row   {us.fmt('.1f', ' us')}   target <= {TARGET_US_PER_ROW:.0f} us: "
          f"{mark(us.median <= TARGET_US_PER_ROW)}")  # fmt: skip
    rss = spread([s.rss_mb for s in tool])
    print(
        f"  peak RSS       {rss.fmt('.0f', ' MiB')}   target <= {TARGET_RSS_MB:.0f} MB: {mark(rss.median <= TARGET_RSS_MB)}"
    )
    share = rows / mig_wall.median / ceil["insert_rows_per_s"]
    print(f"  rows/s share of the sandbox insert ceiling: {share:.2f} (target >= {TARGET_CEILING_SHARE} at 1M rows"
          f"{'' if args.rows < 1_000_000 else ': ' + mark(share >= TARGET_CEILING_SHARE)})")  # fmt: skip
    if not verify:
        print(f"verify: not run (--verify-runs 0); at the end: {load_line()}")
        return
    v_wall = spread([s.wall for s in verify])
    v_ratio = v_wall.median / mig_wall.median
    print(f"verify wall      {v_wall.fmt(unit=' s')} = {v_ratio:.2f}x migrate   target <= {TARGET_VERIFY_RATIO}x: "
          f"{mark(v_ratio <= TARGET_VERIFY_RATIO)}")  # fmt: skip
    v_us = spread([s.cpu / max(rows, 1) * 1e6 for s in verify])
    print(
        f"  CPU/row        {v_us.fmt('.1f', ' us')}   target <= {TARGET_US_PER_ROW:.0f} us: {mark(v_us.median <= TARGET_US_PER_ROW)}"
    )
    v_rss = spread([s.rss_mb for s in verify])
    print(
        f"  peak RSS       {v_rss.fmt('.0f', ' MiB')}   target <= {TARGET_RSS_MB:.0f} MB: {mark(v_rss.median <= TARGET_RSS_MB)}"
    )
    print(f"  exit codes     {[s.code for s in verify]} (0: destination matches)")
    print(f"at the end: {load_line()}")


if __name__ == "__main__":
    main()
