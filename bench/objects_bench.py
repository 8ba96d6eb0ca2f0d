"""Object migration against a sandbox with 20 ms of latency per request.

    .venv/bin/python bench/objects_bench.py [--profile medium] [--latency-ms 20]

Reports wall time and requests for a fresh run and an unchanged re-run, against the
ideal of requests x latency / request cap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path

from bench.common import KEYS, env_for, run_cli, sandbox, set_faults
from braintrust_migrate.sandbox.seed.run import seed_org


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="medium")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--cap", type=int, default=20, help="MIGRATION_MAX_CONCURRENT_REQUESTS")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-objects-"))
    with sandbox(work / "sandbox.db") as url:
        asyncio.run(seed_org(url, KEYS["source"], profile=args.profile, seed=1))
        set_faults(url, None, {"latency_ms": args.latency_ms, "exclude_paths": ["/_sandbox"]})
        env = env_for(url, "source", "dest", work / "state", MIGRATION_MAX_CONCURRENT_REQUESTS=str(args.cap))
        for label in ("fresh run", "unchanged re-run"):
            seconds, code, err = run_cli(["migrate", "--map-users"], env, work)
            report = json.loads(
                max(
                    (work / "state").glob("*/runs/*/migration_report.json"), key=lambda p: p.stat().st_mtime
                ).read_text()
            )
            http = report["http"]
            requests = http["source"]["requests"] + http["dest"]["requests"]
            ideal = requests * args.latency_ms / 1000 / args.cap
            print(
                f"{label:>18}: {seconds:6.2f} s wall (exit {code}), {requests} requests "
                f"(source {http['source']['requests']}, dest {http['dest']['requests']}), "
                f"ideal {ideal:5.2f} s, ratio {seconds / ideal if ideal else float('nan'):4.2f}"
            )
            if code != 0:
                print(err[-2000:])
            if os.environ.get("BENCH_LOG_LEVEL"):
                print("\n".join(line for line in err.splitlines() if "phase finished" in line))


if __name__ == "__main__":
    main()
