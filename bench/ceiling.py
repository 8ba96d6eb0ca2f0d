"""The sandbox's own ceiling, from a minimal client: its insert rate alone (big batches into a few
containers, many requests in flight) and its BTQL read rate alone (keyset pages of those containers,
one reader per container). Every tool result can then be read as a share of this limit.

    python -m bench.ceiling URL KEY [--rows 50000] [--containers 16] [--batch 1000] [--in-flight 32]

Prints one JSON line: rows, insert_rows_per_s, read_rows_per_s, bytes_per_row.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

FILLER = "The quick brown fox jumps over the lazy dog. " * 12


def row(i: int) -> dict:
    """About 1.5 KiB of JSON, the size of the seeded medium-profile rows."""
    return {"id": f"ceil-{i:09d}", "input": {"q": FILLER[: 300 + i % 200]}, "output": {"a": FILLER},
            "expected": FILLER[:150], "scores": {"s": (i % 100) / 100}, "metadata": {"model": "gpt-x", "i": i},
            "metrics": {"start": i, "end": i + 1, "tokens": 120}, "span_attributes": {"name": "root", "type": "task"}}  # fmt: skip


async def main(url: str, key: str, rows: int, containers: int, batch: int, in_flight: int) -> dict:
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    client = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300,
                               transport=AiohttpTransport(limits=limits))  # fmt: skip
    slots = asyncio.Semaphore(in_flight)

    async def post(path: str, body: bytes) -> dict:
        async with slots:
            while True:
                r = await client.post(path, content=body)
                if r.status_code != 429:
                    r.raise_for_status()
                    return orjson.loads(r.content)
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))

    project = await post("/v1/project", orjson.dumps({"name": f"ceiling {time.time_ns()}"}))
    ids = [
        (await post("/v1/experiment", orjson.dumps({"project_id": project["id"], "name": f"c{n}"})))["id"]
        for n in range(containers)
    ]
    # Bodies built before the clock starts: the ceiling is the server's, not this client's.
    bodies = [
        (ids[(first // batch) % containers], orjson.dumps({"events": [row(i) for i in range(first, min(first + batch, rows))]}))
        for first in range(0, rows, batch)
    ]  # fmt: skip
    size = sum(len(b) for _, b in bodies) / rows
    started = time.perf_counter()
    await asyncio.gather(*(post(f"/v1/experiment/{cid}/insert", body) for cid, body in bodies))
    insert_s = time.perf_counter() - started

    async def read(cid: str) -> int:
        seen, after = 0, ""
        while True:
            query = (f"select: *\nfrom: experiment('{cid}') spans\nfilter: _pagination_key > '{after}'\n"
                     f"sort: _pagination_key asc\nlimit: {batch}")  # fmt: skip
            data = (await post("/btql", orjson.dumps({"query": query, "fmt": "json"})))["data"]
            seen += len(data)
            if len(data) < batch:
                return seen
            after = data[-1]["_pagination_key"]

    started = time.perf_counter()
    read_rows = sum(await asyncio.gather(*(read(cid) for cid in ids)))
    read_s = time.perf_counter() - started
    await client.aclose()
    return {"rows": rows, "insert_rows_per_s": round(rows / insert_s), "read_rows": read_rows,
            "read_rows_per_s": round(read_rows / read_s), "bytes_per_row": round(size)}  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--containers", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=32, help="stay under the sandbox's 429 limit")
    a = parser.parse_args()
    print(orjson.dumps(asyncio.run(main(a.url, a.key, a.rows, a.containers, a.batch, a.in_flight))).decode())
