"""Object migration against a sandbox with latency, judged against its critical-path yardstick.

The yardstick is computed from the run's own plan.

    .venv/bin/python -m bench.objects_bench [--profile medium] [--latency-ms 100] [--no-pin]

Yardstick = (longest chain of dependent round trips) x latency + requests x latency / cap. The
chain comes from the object graph of the source (engine/graph.py over the source listing, the
engine's own build_nodes + link, read only) and the run's report: a written object is one round
trip after the objects it needs (a skipped or unchanged one none), an object with references
patched in later one more, one pinning a version of a container's rows waits for them (or is written
again once they are), a container's rows its keyset reads (pages in a row, from the start)
and one insert after both the reads and the container. A pinned version costs two more: the
destination cannot take the source's transaction ids, so each pinned version's rows are written
and the destination's new transaction read back before the next version's (or the current rows')
writes start; that order is the API's, not the tool's. Setup before any write: org discovery,
listing (pages in a row), owner listings, the user map. Requests are the report's, both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from bench.common import (
    KEYS,
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
    with_tool_src,
)
from bench.yardstick import critical_path, ideal_seconds
from braintrust_migrate.config import load_settings
from braintrust_migrate.engine.events.stage import pinned_versions
from braintrust_migrate.engine.graph import Node, link
from braintrust_migrate.engine.inventory import ALL_LISTABLE, Inventory, load_inventory, load_owned
from braintrust_migrate.engine.refs import find_slots
from braintrust_migrate.engine.resources import STREAMS
from braintrust_migrate.engine.scope import owner_objects
from braintrust_migrate.engine.selection import build_nodes, run_types, selected_names, selected_projects
from braintrust_migrate.sandbox.seed.run import seed_org
from braintrust_migrate.source.live import open_live

TARGET = 1.3
CONTAINER_KIND = {"project_logs": "project", "experiment": "experiment", "dataset": "dataset"}


async def source_graph(url: str) -> tuple[dict[Any, Node], Inventory, int, bool]:
    """The engine's object graph of the source org, its inventory, list page size, owner listings."""
    s = load_settings({"bt_source_url": url, "bt_source_api_key": KEYS["source"], "bt_dest_url": url,
                       "bt_dest_api_key": KEYS["dest"]}, env_file=None)  # fmt: skip
    types = run_types(selected_names(s))
    async with open_live(s, "source") as source:
        inv = await load_inventory(
            source, None, [rt for rt in ALL_LISTABLE if rt in types or rt.always_listed]
        )
        projects = selected_projects(s, inv)
        owned = [rt for rt in types if rt.per_owner]
        for rt in owned:
            await load_owned(source, inv, rt, owner_objects(rt, inv, projects))
    nodes = build_nodes(s, types, inv, projects)
    link(nodes)
    return nodes, inv, s.migration_batch_size, bool(owned)


def plan(
    nodes: dict[Any, Node], inv: Inventory, list_page: int, owned: bool, report: dict, row_page: int
) -> tuple[dict[Hashable, list[Hashable]], dict[Hashable, int]]:
    """Steps and their round trips for critical_path, from the graph and what the run did."""
    written = {(o.get("kind"), o.get("source_id")) for o in report["objects"]
               if o.get("action") in ("created", "updated", "patched")}  # fmt: skip
    listing = max((math.ceil(len(list(inv.of(rt.kind))) / list_page) for rt in ALL_LISTABLE), default=1)
    setup = ("setup",)
    # org discovery, listing pages in a row, owner listings, users (both sides at once each)
    deps: dict[Hashable, list[Hashable]] = {setup: []}
    cost: dict[Hashable, int] = {setup: 1 + max(listing, 1) + int(owned) + 1}
    for key, node in nodes.items():
        deps[key] = [setup, *node.deps]
        cost[key] = int(key in written)
        soft = [k for k in node.soft if k in nodes]
        if soft and key in written:
            deps[("patch", key)] = [key, *soft]
        # A pinned version of a container's rows exists once those rows are written: a required pin
        # waits for them, an optional one is written again (repin) once they are.
        for slot in find_slots(node.rt.kind, node.src):
            pinned = (
                slot.ref.version_field
                and isinstance(slot.parent, dict)
                and slot.parent.get(slot.ref.version_field)
            )
            if pinned and slot.ref.target in CONTAINER_KIND.values():
                rows = ("rows", slot.value)
                if node.rt.required:
                    deps[key].append(rows)
                elif key in written:
                    deps[("repin", key)] = [key, rows]
    pins = {kind: pinned_versions(inv, stream) for kind, stream in STREAMS.items()}
    for c in report["events"]["containers"]:
        reads = ("reads", c["source_id"])
        deps[reads] = []
        cost[reads] = max(1, math.ceil(c["rows_read"] / row_page))
        owner = (CONTAINER_KIND.get(c["container"], c["container"]), c["source_id"])
        rows = ("rows", c["source_id"])
        deps[rows] = [reads, owner if owner in nodes else setup]
        cost[rows] = 1 + 2 * len(pins.get(c["container"], {}).get(c["source_id"], ()))
    missing = {k for d in deps.values() for k in d if k not in deps}
    for key in missing:  # a pin to rows the run did not copy: nothing to wait for
        for d in deps.values():
            if key in d:
                d.remove(key)
    return deps, cost


def report_of(state: Path) -> dict:
    return json.loads(
        max(state.glob("*/runs/*/migration_report.json"), key=lambda p: p.stat().st_mtime).read_text()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="medium")
    parser.add_argument("--rows", type=int, default=None, help="seeded event rows (default: the profile's)")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--cap", type=int, default=20, help="MIGRATION_MAX_CONCURRENT_REQUESTS (per side)")
    parser.add_argument("--rerun", action="store_true", help="also time an unchanged re-run")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the migrate runs, e.g. MIGRATION_OVERLAP_ROWS=false")  # fmt: skip
    add_tool_src_argument(parser)
    add_pin_argument(parser)
    args = parser.parse_args()
    print(configure_pinning(not args.no_pin))
    latency = args.latency_ms / 1000
    work = scratch("bench-objects-")
    with sandbox(work / "sandbox.db") as url:
        asyncio.run(seed_org(url, KEYS["source"], profile=args.profile, seed=1, rows=args.rows))
        nodes, inv, list_page, owned = asyncio.run(source_graph(url))  # before the latency is on
        set_faults(url, None, {"latency_ms": args.latency_ms, "exclude_paths": ["/_sandbox"]})
        env = env_for(url, "source", "dest", work / "state", MIGRATION_MAX_CONCURRENT_REQUESTS=str(args.cap),
                      **dict(item.split("=", 1) for item in args.set))  # fmt: skip
        env = with_tool_src(env, args.tool_src)
        for label in ("fresh run", "unchanged re-run")[: 2 if args.rerun else 1]:
            before = sandbox_cpu(url)
            run = measure(cli("migrate", "--map-users"), env, work)
            server = sandbox_cpu(url) - before
            if run.code != 0:
                print(run.stderr[-2000:])
            report = report_of(work / "state")
            http = report["http"]
            src, dst = http["source"]["requests"], http["dest"]["requests"]
            deps, cost = plan(
                nodes, inv, list_page, owned, report, int(env.get("MIGRATION_EVENT_PAGE_SIZE", 1000))
            )
            trips, chain = critical_path(deps, cost)
            ideal = ideal_seconds(trips, src + dst, latency, args.cap)
            per_side = trips * latency + max(src, dst) * latency / args.cap  # each side has its own cap
            ratio = run.wall / ideal
            print(f"{label}: {run.wall:.2f} s wall (exit {run.code}), tool cpu {run.cpu:.2f} s, peak RSS "
                  f"{run.rss_mb:.0f} MiB, sandbox cpu {server:.2f} s; {src + dst} requests (source {src}, dest {dst})")  # fmt: skip
            print(f"  critical path: {trips} round trips = {trips * latency:.2f} s; requests x latency / cap = "
                  f"{(src + dst) * latency / args.cap:.2f} s; yardstick {ideal:.2f} s")  # fmt: skip
            print(f"  wall / yardstick {ratio:.2f}x   target <= {TARGET}x: {'ok' if ratio <= TARGET else 'MISSED'}"
                  f"   (per-side cap variant: yardstick {per_side:.2f} s, {run.wall / per_side:.2f}x)")  # fmt: skip
            written = sum(cost.get(k, 0) for k in nodes)
            print(f"  plan: {len(nodes)} objects in the source graph, {written} written by this run")
            steps = [f"{k[0]}:{cost.get(k, 1)}" for k in chain]
            print(f"  the chain ({len(chain)} steps, kind:round trips): {' -> '.join(steps)}")
    print(f"at the end: {load_line()}")


if __name__ == "__main__":
    main()
