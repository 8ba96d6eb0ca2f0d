"""Throughput of the sandbox's data plane: batched inserts and BTQL keyset paging.

Run by hand::

    .venv/bin/python bench/sandbox_events_bench.py --rows 1000000

The server runs in a child process (its own GIL) over an on-disk SQLite file, like
``braintrust-migrate sandbox serve --db``; this process is the client. Rows are
~1 KiB project-log events inserted ``--batch`` per request; paging reads the project
back with ``filter: _pagination_key > '<last>'`` + ``sort: _pagination_key asc`` +
``limit: --page``, the way the migration tool reads containers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson


def _serve(db: str, conn: Connection) -> None:
    from braintrust_migrate.sandbox.server import SandboxServer

    with SandboxServer(db) as server:
        org = server.create_org(f"bench-{uuid.uuid4().hex[:8]}")
        conn.send((server.url, org.api_key))
        conn.recv()  # until the client is done


def _event(i: int, filler: str) -> dict[str, Any]:
    return {
        "id": f"row-{i:09d}",
        "input": {"question": f"What is item {i}?", "context": filler},
        "output": {"answer": filler[: 200 + i % 100]},
        "expected": "yes",
        "scores": {"accuracy": (i % 100) / 100},
        "metadata": {"model": "gpt-bench", "shard": i % 16},
        "metrics": {"start": 1.0 + i, "end": 2.5 + i, "tokens": 120},
        "tags": ["bench"],
        "span_attributes": {"name": "root", "type": "task"},
        "created": "2026-01-01T00:00:00.000Z",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows to insert (default 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per insert request")
    parser.add_argument("--page", type=int, default=1000, help="rows per BTQL page")
    parser.add_argument("--db", default=None, help="SQLite file (default: a temporary file)")
    args = parser.parse_args()

    workdir = tempfile.TemporaryDirectory(prefix="sandbox-bench-")
    db = args.db or str(Path(workdir.name) / "sandbox.db")
    parent, child = multiprocessing.get_context("spawn").Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(db, child), daemon=True)
    proc.start()
    url, key = parent.recv()
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300)
    try:
        project = client.post("/v1/project", json={"name": "bench"}).raise_for_status().json()
        path = f"/v1/project_logs/{project['id']}/insert"
        filler = "lorem ipsum dolor sit amet " * 18
        sample = orjson.dumps(_event(0, filler))
        print(
            f"row size ~{len(sample)} bytes; {args.rows} rows, {args.batch} per insert, {args.page} per page"
        )

        start = time.perf_counter()
        tail_from, tail_start = args.rows - args.rows // 10, None
        for first in range(0, args.rows, args.batch):
            if tail_start is None and first >= tail_from:
                tail_start = time.perf_counter()
            events = [_event(i, filler) for i in range(first, min(first + args.batch, args.rows))]
            client.post(path, content=orjson.dumps({"events": events})).raise_for_status()
        end = time.perf_counter()
        print(f"insert: {args.rows / (end - start):,.0f} rows/s ({end - start:.1f} s)", end="")
        if tail_start is not None and end > tail_start:
            print(
                f"; last 10% (server already full): {(args.rows - tail_from) / (end - tail_start):,.0f} rows/s"
            )

        start = time.perf_counter()
        seen, last = 0, ""
        while True:
            query = (
                f"select: *\nfrom: project_logs('{project['id']}') spans\n"
                f"filter: _pagination_key > '{last}'\nsort: _pagination_key asc\nlimit: {args.page}"
            )
            data = (
                client.post("/btql", json={"query": query, "fmt": "json"}).raise_for_status().json()["data"]
            )
            if not data:
                break
            seen += len(data)
            last = data[-1]["_pagination_key"]
        page_s = time.perf_counter() - start
        print(f"paging: {seen / page_s:,.0f} rows/s ({page_s:.1f} s, {seen} rows)")
        assert seen == args.rows, f"paged {seen} rows, inserted {args.rows}"
        files = {p.name: p.stat().st_size for p in Path(db).parent.glob(Path(db).name + "*")}
        size = sum(files.values())
        detail = ", ".join(f"{name}: {n / 2**20:,.0f} MiB" for name, n in sorted(files.items()))
        print(f"db size: {size / 2**20:,.0f} MiB, {size / max(args.rows, 1):,.0f} bytes/row ({detail})")
    finally:
        client.close()
        parent.send("done")
        proc.join(timeout=30)
        workdir.cleanup()


if __name__ == "__main__":
    main()
