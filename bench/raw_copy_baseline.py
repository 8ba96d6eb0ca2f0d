"""The smallest possible copy, as a yardstick: page every container with BTQL and insert
each page into the destination with the same concurrency and batch sizes. Nothing else:
no checkpoints, no transforms beyond dropping server fields, no reports.

    python -m bench.raw_copy_baseline URL SOURCE_KEY DEST_KEY CONCURRENCY PAGE BATCH
"""

from __future__ import annotations

import asyncio
import sys
import time

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

DROP = ("_xact_id", "_pagination_key", "project_id", "experiment_id", "dataset_id", "org_id", "log_id",
        "comments", "audit_data", "is_root", "classifications", "_async_scoring_state")  # fmt: skip


async def main(url: str, source_key: str, dest_key: str, concurrency: int, page: int, batch: int) -> None:
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    src = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {source_key}"}, timeout=120,
                            transport=AiohttpTransport(limits=limits))  # fmt: skip
    dst = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {dest_key}"}, timeout=120,
                            transport=AiohttpTransport(limits=limits))  # fmt: skip

    async def call(client: httpx.AsyncClient, method: str, path: str, body: object = None) -> object:
        resets = 0
        while True:
            try:
                r = await client.request(
                    method, path, content=orjson.dumps(body) if body is not None else None
                )
            except httpx.TransportError:  # a reset under load: any real copier retries these
                resets += 1
                if resets > 8:
                    raise
                await asyncio.sleep(0.1 * 2**resets)
                continue
            if r.status_code == 429:
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                continue
            r.raise_for_status()
            return orjson.loads(r.content)

    containers: list[tuple[str, str, str]] = []  # (kind, source id, dest id)
    for project in (await call(src, "GET", "/v1/project"))["objects"]:
        dest_project = await call(dst, "POST", "/v1/project", {"name": project["name"]})
        containers.append(("project_logs", project["id"], dest_project["id"]))
        for kind in ("experiment", "dataset"):
            for obj in (
                await call(src, "GET", f"/v1/{kind}", None)
                if False
                else await call(src, "GET", f"/v1/{kind}?project_id={project['id']}")
            )["objects"]:
                made = await call(
                    dst, "POST", f"/v1/{kind}", {"project_id": dest_project["id"], "name": obj["name"]}
                )
                containers.append((kind, obj["id"], made["id"]))
    rows = 0
    slots = asyncio.Semaphore(concurrency)

    async def copy(kind: str, src_id: str, dst_id: str) -> None:
        nonlocal rows
        after = None
        async with slots:
            while True:
                lines = ["select: *", f"from: {kind}('{src_id}') spans"]
                if after:
                    lines.append(f"filter: _pagination_key > '{after}'")
                lines += ["sort: _pagination_key asc", f"limit: {page}"]
                data = (await call(src, "POST", "/btql", {"query": "\n".join(lines), "fmt": "json"}))["data"]
                events = [{k: v for k, v in r.items() if k not in DROP and v is not None} for r in data]
                for start in range(0, len(events), batch):
                    await call(
                        dst, "POST", f"/v1/{kind}/{dst_id}/insert", {"events": events[start : start + batch]}
                    )
                rows += len(events)
                if len(data) < page:
                    return
                after = data[-1]["_pagination_key"]

    started = time.perf_counter()
    await asyncio.gather(*(copy(*c) for c in containers))
    seconds = time.perf_counter() - started
    print(
        orjson.dumps(
            {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}
        ).decode()
    )
    await src.aclose()
    await dst.aclose()


if __name__ == "__main__":
    url, source_key, dest_key, concurrency, page, batch = sys.argv[1:7]
    asyncio.run(main(url, source_key, dest_key, int(concurrency), int(page), int(batch)))
