"""The tool's own CPU per row: `migrate` in this process (the sandbox in another), its user+sys
CPU divided by the rows it wrote, and a cProfile top N of a second, profiled run.

    .venv/bin/python -m bench.cpu_profile [--profile small] [--rows 50000] [--runs 3] [--top 15]
        [--old-src /tmp/old/src]

With --old-src (a copy of an older `src`, e.g. `git archive HEAD src | tar -x -C /tmp/old`), each
timed run is made twice, old then new, alternating in one invocation, each in a child process of
its own: a before/after ratio under the same machine load.

The source org is seeded once into a template database (cached in /tmp by profile and rows);
each run starts a sandbox on a fresh copy of it, so every run writes into an empty destination.
No latency or rate limit is set: only the tool's CPU is measured, not its waiting. The timed
runs are not profiled (cProfile roughly doubles Python's CPU); the profiled run comes last.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BIN, KEYS, sandbox


def template(profile: str, rows: int) -> Path:
    """A sandbox database whose source org is seeded (made once, then reused)."""
    path = Path(tempfile.gettempdir()) / f"bench-cpu-{profile}-{rows}.db"
    if path.exists():
        return path
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    with sandbox(building) as url:
        subprocess.run(
            [str(BIN / "braintrust-migrate"), "sandbox", "seed", "--url", url, "--api-key", KEYS["source"],
             "--profile", profile, "--rows", str(rows)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    building.rename(path)
    return path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(db: Path, work: Path, profiler: cProfile.Profile | None) -> tuple[float, int]:
    """(tool CPU seconds, rows written) of one migrate into an empty destination."""
    from braintrust_migrate.api import migrate_sync

    work.mkdir(parents=True)
    copy = work / "sandbox.db"
    shutil.copyfile(db, copy)
    with sandbox(copy) as url:
        settings = {
            "BT_SOURCE_URL": url,
            "BT_DEST_URL": url,
            "BT_SOURCE_API_KEY": KEYS["source"],
            "BT_DEST_API_KEY": KEYS["dest"],
            "MIGRATION_STATE_DIR": str(work / "state"),
            "MIGRATION_MAX_CONCURRENT_RESOURCES": "16",
            "MIGRATION_EVENT_PAGE_SIZE": "1000",
            "MIGRATION_INSERT_BATCH_ROWS": "1000",
        }
        before = cpu_seconds()
        if profiler:
            profiler.enable()
        result = migrate_sync(settings, env_file=None)
        if profiler:
            profiler.disable()
        spent = cpu_seconds() - before
    if not result.ok:
        raise SystemExit(f"migrate failed: {result.failures[:3]}")
    rows = sum(c.rows_written for c in result.containers)
    return spent, rows


def child(args: argparse.Namespace) -> None:
    """One timed run in this process; prints its JSON line for the parent."""
    spent, rows = run_once(Path(args.db), Path(args.work), None)
    print(json.dumps({"cpu": spent, "rows": rows}))


def timed_run(db: Path, work: Path, src: str | None) -> tuple[float, int]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, str(Path(__file__).parent.parent)])
    out = subprocess.run(
        [sys.executable, "-m", "bench.cpu_profile", "--child", "--db", str(db), "--work", str(work)],
        env=env, capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    line = json.loads(out.stdout.strip().splitlines()[-1])
    return line["cpu"], line["rows"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="small", help="seed profile (small|medium|large)")
    parser.add_argument("--rows", type=int, default=50_000, help="event rows to seed")
    parser.add_argument("--runs", type=int, default=3, help="timed (unprofiled) runs")
    parser.add_argument("--top", type=int, default=15, help="profile rows to print (0: no profiled run)")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    parser.add_argument("--old-src", help="an older src folder to time beside this one")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    db = template(args.profile, args.rows)
    root = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    print(f"{args.profile} profile, {args.rows} rows seeded; load before: {os.getloadavg()[0]:.2f}")
    sides = [("old", args.old_src), ("new", None)] if args.old_src else [("new", None)]
    per_row: dict[str, list[float]] = {name: [] for name, _ in sides}
    for n in range(args.runs):
        for name, src in sides:
            spent, rows = timed_run(db, root / f"{name}{n}", src)
            per_row[name].append(spent / max(rows, 1) * 1e6)
            print(f"run {n} {name}: {rows} rows, {spent:.2f} s CPU, {per_row[name][-1]:.1f} us/row")
    for name, values in per_row.items():
        if values:
            print(
                f"{name}: median {statistics.median(values):.1f} us/row (min {min(values):.1f}, max {max(values):.1f})"
            )
    if args.top:
        profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting
        spent, rows = run_once(db, root / "profiled", profiler)
        print(f"profiled run: {rows} rows, {spent / max(rows, 1) * 1e6:.1f} us/row (with cProfile overhead)")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
    print(f"load after: {os.getloadavg()[0]:.2f}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
