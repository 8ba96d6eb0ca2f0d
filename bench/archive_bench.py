"""Export and import beside a live migrate of the same rows, in one run: the events bench's
data (scale 1: 350k rows), 20 ms of latency, a 429 limit at 50 concurrent requests.

    .venv/bin/python -m bench.archive_bench [--scale 1.0] [--gzip]

Prints, for migrate (source -> dest), export (source -> folder) and import (folder -> a third
org): wall time, rows/s, peak RSS; the export's bytes against the bytes of the JSON rows the
live migrate read; and the ratios the issue sets (export and import rows/s over migrate's)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from bench.common import BIN, env_for, sandbox, scratch, set_faults
from bench.events_bench import populate, timed

TOOL = str(BIN / "braintrust-migrate")


def _report(state: Path) -> dict:
    path = max(state.glob("*/runs/*/migration_report.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(path.read_text())


def _rows(report: dict) -> tuple[int, int]:
    totals = report["events"]["totals"].values()
    return sum(t["rows_written"] for t in totals), sum(t["bytes"] for t in totals)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--gzip", action="store_true", help="also export gzip-compressed")
    parser.add_argument("--budget-mib", type=int, help="MIGRATION_MAX_BYTES_IN_FLIGHT (default: the tool's)")
    parser.add_argument("--skip-migrate", action="store_true", help="export and import only (memory runs)")
    args = parser.parse_args()
    work = scratch("bench-archive-")
    with sandbox(work / "sandbox.db") as url:
        started = time.perf_counter()
        total = asyncio.run(populate(url, args.scale))
        print(f"source: {total} rows written in {time.perf_counter() - started:.1f} s")
        set_faults(url, None, {"latency_ms": args.latency_ms, "max_concurrent_per_key": 50,
                               "exclude_paths": ["/_sandbox"]})  # fmt: skip
        tuning = {"MIGRATION_MAX_CONCURRENT_RESOURCES": "16", "MIGRATION_EVENT_PAGE_SIZE": "1000",
                  "MIGRATION_INSERT_BATCH_ROWS": "1000"}  # fmt: skip
        if args.budget_mib:
            tuning["MIGRATION_MAX_BYTES_IN_FLIGHT"] = str(args.budget_mib << 20)
        live_env = env_for(url, "source", "dest", work / "state-live", **tuning)
        live_rate, json_bytes = 0.0, 0
        if not args.skip_migrate:
            seconds, rss, _, _ = timed([TOOL, "migrate"], live_env, work)
            rows, json_bytes = _rows(_report(work / "state-live"))
            live_rate = rows / seconds
            print(
                f"migrate : {rows} rows in {seconds:.1f} s ({live_rate:.0f} rows/s), peak RSS {rss:.0f} MiB"
            )

        folder = work / "export"
        seconds, rss, _, _ = timed([TOOL, "export", "--to", str(folder)], live_env, work)
        manifest = json.loads((folder / "manifest.json").read_text())
        exported = sum(p["rows"] for c in manifest["containers"] for p in c["parts"])
        stored = sum(f["bytes"] for name, f in manifest["files"].items() if name.startswith("rows/"))
        export_rate = exported / seconds
        share = f" = {stored / json_bytes:.3f}x the JSON rows migrate read" if json_bytes else ""
        print(f"export  : {exported} rows in {seconds:.1f} s ({export_rate:.0f} rows/s), peak RSS {rss:.0f} MiB,"
              f" {stored} bytes of rows{share}")  # fmt: skip

        import_env = env_for(url, "source", "restore", work / "state-import", **tuning)
        seconds, rss, _, _ = timed([TOOL, "import", "--from", str(folder)], import_env, work)
        imported, _ = _rows(_report(work / "state-import"))
        import_rate = imported / seconds
        print(
            f"import  : {imported} rows in {seconds:.1f} s ({import_rate:.0f} rows/s), peak RSS {rss:.0f} MiB"
        )
        if live_rate:
            ratios = f"export {export_rate / live_rate:.2f}, import {import_rate / live_rate:.2f}"
            print(f"ratios to migrate (rows/s): {ratios}")
        if args.gzip:
            packed = work / "export-gzip"
            seconds, rss, _, _ = timed(
                [TOOL, "export", "--to", str(packed), "--compress", "gzip"], live_env, work
            )
            manifest = json.loads((packed / "manifest.json").read_text())
            zipped = sum(f["bytes"] for name, f in manifest["files"].items() if name.startswith("rows/"))
            print(f"gzip    : {seconds:.1f} s ({exported / seconds:.0f} rows/s), peak RSS {rss:.0f} MiB,"
                  f" {zipped} bytes = {zipped / stored:.3f}x the plain export")  # fmt: skip


if __name__ == "__main__":
    main()
