"""`demo`: the whole product on a local sandbox, no account and no network needed.

Starts the sandbox in-process with a source and a destination org, seeds the source,
then runs validate -> migrate -> verify exactly as the commands do.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from braintrust_migrate.client import client_for
from braintrust_migrate.config import Settings, load_settings
from braintrust_migrate.engine.context import Options
from braintrust_migrate.engine.progress import ProgressView
from braintrust_migrate.engine.report import html_path
from braintrust_migrate.engine.runner import Runner
from braintrust_migrate.engine.secrets_file import Secrets
from braintrust_migrate.sandbox.seed.run import seed_org
from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.validate import run_validation
from braintrust_migrate.verify.runner import Verifier


@dataclass
class DemoOptions:
    profile: str = "small"
    seed: int = 0
    rows: int | None = None  # event rows to seed; None: the profile's default
    output: Path = Path("braintrust-migrate-demo")
    keep: bool = False


def _settings(server: SandboxServer, source_key: str, dest_key: str, output: Path) -> Settings:
    return load_settings(
        {
            "bt_source_url": server.url,
            "bt_dest_url": server.url,
            "bt_source_api_key": source_key,
            "bt_dest_api_key": dest_key,
            "migration_state_dir": output,
            "bt_source_org_name": None,
            "bt_dest_org_name": None,
        },
        env_file=None,
    )


async def _validate(settings: Settings) -> bool:
    source, dest = client_for(settings, "source"), client_for(settings, "dest")
    async with source, dest:
        result = await run_validation(source, dest, write_check=True, state_dir=settings.migration_state_dir)
    return result.ok


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    console = console or Console()
    started = time.perf_counter()
    with SandboxServer() as server:
        source = server.create_org("demo-source")
        dest = server.create_org("demo-destination")
        console.print(
            f"[bold]1/5[/] sandbox running at {server.url} with orgs 'demo-source' and 'demo-destination'"
        )
        settings = _settings(server, source.api_key, dest.api_key, options.output)

        seeded = asyncio.run(
            seed_org(
                server.url, source.api_key, profile=options.profile, seed=options.seed, rows=options.rows
            )
        )
        total = sum(seeded.counts.values())
        console.print(
            f"[bold]2/5[/] seeded the source org: {total} objects and {seeded.event_rows} event rows "
            f"({options.profile} profile, seed {options.seed})"
        )

        if not asyncio.run(_validate(settings)):
            console.print("[bold red]validate failed[/]")
            return 1
        console.print(
            "[bold]3/5[/] validate: both orgs reachable, keys accepted, read and write access confirmed"
        )

        migration = Options(map_users=True, invite_users=True, overwrite=True)
        result = asyncio.run(Runner(settings, migration, Secrets(), ProgressView()).run())
        totals = result.report["totals"]
        created = sum(t.get("created", 0) for t in totals.values())
        console.print(
            f"[bold]4/5[/] migrate: {created} objects created, {result.report['failed']} failed "
            f"({result.report['duration_s']} s)"
        )
        console.print(result.summary_path.read_text(encoding="utf-8"), markup=False, highlight=False)

        parity = asyncio.run(Verifier(settings, map_users=True, folder=result.report_path.parent).run())
        verdict = "[green]PARITY[/]" if parity.ok else "[bold red]DIFFERENCES FOUND[/]"
        console.print(f"[bold]5/5[/] verify: {verdict}")
        console.print(parity.summary_path.read_text(encoding="utf-8"), markup=False, highlight=False)
        console.print(f"reports in {result.report_path.parent}")
        for page in (html_path(result.report_path), html_path(parity.report_path)):
            console.print(f"HTML report: {page}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"demo finished in {time.perf_counter() - started:.1f} s")
        ok = result.ok and parity.ok
        if options.keep:
            _keep_running(server, source.api_key, dest.api_key, console)
    return 0 if ok else 1


def _keep_running(server: SandboxServer, source_key: str, dest_key: str, console: Console) -> None:
    console.print("\nThe sandbox keeps running so you can try every command by hand:")
    console.print(f"  export BT_SOURCE_URL={server.url} BT_DEST_URL={server.url}")
    console.print(f"  export BT_SOURCE_API_KEY={source_key}")
    console.print(f"  export BT_DEST_API_KEY={dest_key}")
    console.print("  braintrust-migrate validate && braintrust-migrate verify --map-users")
    console.print("Press Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
