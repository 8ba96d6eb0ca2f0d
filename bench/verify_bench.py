"""`verify` against `migrate` on the same org: the medium profile seeded into a sandbox in its own
process (20 ms of latency, 429 above 50 in flight), migrated once, then verified. Prints wall,
user+sys CPU (and µs per row) and peak RSS of both commands, and the verify/migrate wall ratio.

    .venv/bin/python -m bench.verify_bench [--rows 200000] [--work DIR] [--verify-runs 1] [--before DIR]

--before DIR also times verify with DIR first on PYTHONPATH, alternating with the current code, on
the same data in the same run: e.g. `git archive HEAD src | tar -x -C /tmp/old` then
`--before /tmp/old/src`.

With --work DIR the database and state are kept there: a second run with the same DIR skips
seeding and migrating and only times verify again (before/after comparisons on the same data).
Targets (issue #18): verify wall <= 0.5x migrate's, peak RSS <= 300 MB, CPU <= 20 µs/row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import BIN, KEYS, env_for, sandbox, set_faults


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Wall seconds, CPU seconds (user+sys) and peak RSS (MiB) of one command, via /usr/bin/time."""
    started = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "TIME=%U %S %M", *cmd], env={**os.environ, **env}, cwd=cwd,
                         capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - started
    line = next(line for line in out.stderr.splitlines() if line.startswith("TIME="))
    user, sys_, rss = line[len("TIME=") :].split()
    if out.returncode not in (0, 1):
        print(out.stderr[-3000:])
    return {"wall": wall, "cpu": float(user) + float(sys_), "rss": int(rss) / 1024, "rc": out.returncode}


def sandbox_cpu() -> float:
    """CPU seconds used so far by the sandbox server (this process's child), from /proc."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # ppid
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def show(name: str, m: dict[str, float], rows: int) -> None:
    print(f"{name:<8}: {m['wall']:.1f} s wall, {m['cpu']:.1f} s CPU ({m['cpu'] / rows * 1e6:.1f} µs/row), "
          f"peak RSS {m['rss']:.0f} MiB, exit {m['rc']:.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000, help="event rows seeded (medium profile)")
    parser.add_argument("--work", type=Path, help="keep the database and state here (reused when present)")
    parser.add_argument("--verify-runs", type=int, default=1)
    parser.add_argument("--before", type=Path, help="a src folder of the code to compare with")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--max-concurrent", type=int, default=50, help="sandbox 429 limit per key")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-verify-"))
    work.mkdir(parents=True, exist_ok=True)
    info = work / "bench.json"
    with sandbox(work / "sandbox.db") as url:
        env = env_for(url, "source", "dest", work / "state")
        if not info.exists():
            set_faults(url, None, None)
            started = time.perf_counter()
            seeded = subprocess.run([str(BIN / "braintrust-migrate"), "sandbox", "seed", "--url", url,
                                     "--api-key", KEYS["source"], "--profile", "medium", "--rows",
                                     str(args.rows), "--json"], capture_output=True, text=True, check=True)  # fmt: skip
            print(f"seeded in {time.perf_counter() - started:.1f} s: {seeded.stdout.strip()[-300:]}")
        set_faults(url, None, {"latency_ms": args.latency_ms, "max_concurrent_per_key": args.max_concurrent,
                               "exclude_paths": ["/_sandbox"]})  # fmt: skip
        if not info.exists():
            before = sandbox_cpu()
            migrated = timed([str(BIN / "braintrust-migrate"), "migrate"], env, work)
            report = json.loads(
                max((work / "state").glob("*/runs/*/migration_report.json"), key=os.path.getmtime).read_text()
            )
            rows = sum(t["rows_written"] for t in report["events"]["totals"].values())
            migrated["sandbox_cpu"] = sandbox_cpu() - before
            info.write_text(json.dumps({"migrate": migrated, "rows": rows}))
        saved = json.loads(info.read_text())
        rows = saved["rows"]
        show("migrate", saved["migrate"], rows)
        sides = [("verify", env)]
        if args.before:
            sides.insert(0, ("before", {**env, "PYTHONPATH": str(args.before)}))
        for _ in range(args.verify_runs):
            for name, side_env in sides:
                before = sandbox_cpu()
                verified = timed([str(BIN / "braintrust-migrate"), "verify"], side_env, work)
                show(name, verified, rows)
                print(f"  sandbox CPU {sandbox_cpu() - before:.1f} s; "
                      f"wall / migrate's: {verified['wall'] / saved['migrate']['wall']:.2f}")  # fmt: skip
        verify_reports = sorted((work / "state").glob("*/verify/*/verify_report.json"), key=os.path.getmtime)
        if verify_reports:
            report = json.loads(verify_reports[-1].read_text())
            bad = [e for e in report["events"] if not e["ok"]]
            print(f"verify report: ok={report['ok']}, {len(report['events'])} containers, {len(bad)} not ok")


if __name__ == "__main__":
    main()
