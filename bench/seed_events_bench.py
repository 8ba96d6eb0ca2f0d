"""Speed and memory of the seed's events phase.

Run by hand::

    .venv/bin/python bench/seed_events_bench.py --rows 1000000

Two measurements in this process:

1. generation alone: the rows of ``--rows`` generated and serialized with orjson, nothing
   sent (``--skip-offline`` leaves it out);
2. the full seed (objects, then ``--rows`` event rows) against a ``SandboxServer`` on an
   SQLite file, which runs in a child process (its own GIL), like ``sandbox serve --db``.

Printed: rows/s for both, the generator's own share of the seeding time, and the peak
RSS of this process (the generator and its HTTP client; the server is elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

import orjson

from braintrust_migrate.sandbox.seed.events_gen import (
    Attachments,
    DatasetRows,
    EventsSpec,
    ExperimentTraces,
    LogTraces,
    round_robin,
)
from braintrust_migrate.sandbox.seed.plan import build_plan
from braintrust_migrate.sandbox.seed.run import seed_org


def _serve(db: str, conn: Connection) -> None:
    from braintrust_migrate.sandbox.server import SandboxServer

    with SandboxServer(db) as server:
        org = server.create_org(f"bench-{uuid.uuid4().hex[:8]}")
        conn.send((server.url, org.api_key))
        conn.recv()  # until the client is done


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def offline(profile: str, seed: int, rows: int) -> tuple[int, int, float]:
    """Generate and serialize every row; (rows, bytes, seconds)."""
    started = time.perf_counter()
    spec = EventsSpec.from_plan(build_plan(profile, seed), rows)
    att = Attachments(seed, upload=False)
    dss = [DatasetRows(seed, c, spec.shapes[c.key]) for c in spec.datasets]
    by_key = {d.container.key: d for d in dss}
    gens = [iter(LogTraces(seed, c, spec.budget[c.key], att)) for c in spec.logs]
    gens += [
        iter(ExperimentTraces(seed, c, spec.budget[c.key], by_key.get(c.dataset or ""), "dataset-id"))
        for c in spec.experiments
    ]
    count = size = 0
    dumps = orjson.dumps
    for trace in round_robin(gens):
        for row in trace:
            size += len(dumps(row))
            count += 1
    for d in dss:
        for part in (d.initial_rows(), d.later_rows(), d.round1_rows(), d.round2_rows()):
            for row in part:
                size += len(dumps(row))
                count += 1
    return count, size, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--profile", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--db", help="SQLite file for the server (default: a temporary file)")
    parser.add_argument("--skip-offline", action="store_true")
    args = parser.parse_args()

    print(f"RSS at start: {_rss_mib():.0f} MiB")
    if not args.skip_offline:
        count, size, seconds = offline(args.profile, args.seed, args.rows)
        print(
            f"generation only: {count} rows, {size / 2**20:.0f} MiB of JSON "
            f"({size / count:.0f} B/row) in {seconds:.1f} s = {count / seconds:,.0f} rows/s; "
            f"peak RSS {_peak_rss_mib():.0f} MiB"
        )

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "bench.db")
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        server = ctx.Process(target=_serve, args=(db, child), daemon=True)
        server.start()
        url, key = parent.recv()
        try:
            before = _rss_mib()
            result = asyncio.run(
                seed_org(
                    url,
                    key,
                    profile=args.profile,
                    seed=args.seed,
                    rows=args.rows,
                    concurrency=args.concurrency,
                )
            )
        finally:
            parent.send("stop")
            server.join(timeout=30)
    rows = result.event_rows
    print(
        f"seeded {result.total} objects and {rows} event rows in {result.elapsed:.1f} s "
        f"({result.event_requests} event requests, {result.attachments} attachments)"
    )
    for kind, c in result.events.items():
        print(
            f"  {kind:<13} rows {c.rows:>9}  live {c.live:>9}  comments {c.comments:>6}  {c.bytes / 2**20:8.1f} MiB"
        )
    print(
        f"end to end: {rows / result.event_elapsed:,.0f} rows/s "
        f"(the generator's own time: {result.event_generation:.1f} s = {rows / max(result.event_generation, 1e-9):,.0f} rows/s)"
    )
    print(
        f"RSS before seeding {before:.0f} MiB, after {_rss_mib():.0f} MiB; peak RSS {_peak_rss_mib():.0f} MiB"
    )
    for note in result.notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
