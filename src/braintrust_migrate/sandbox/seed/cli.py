"""``braintrust-migrate sandbox seed``: what the command does (``sandbox/cli.py`` declares its options).

Every argument is validated here, so bad input gives exactly one line on stderr
and exit code 2; a server that refuses the key or cannot be reached is also
reported as bad input (2); a request refused while seeding exits with 1.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from urllib.parse import urlsplit

import typer

from .run import PROFILES, SeedError, SeedInputError, seed_org_sync


def _fail(message: str, code: int) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _int_option(raw: str, name: str, *, minimum: int) -> int:
    try:
        value = int(raw.strip())
    except (AttributeError, ValueError):
        raise _fail(f"{name} must be an integer, got {raw!r}", 2) from None
    if value < minimum:
        raise _fail(f"{name} must be >= {minimum}, got {value}", 2)
    return value


def _wait_for_server(url: str, seconds: int) -> None:
    """Until `url` accepts connections, for at most `seconds`: a server started in the
    background a moment ago is not listening yet. Past the deadline, seeding reports it."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection((parts.hostname or "", port), timeout=1).close()
            return
        except (OSError, ValueError):
            time.sleep(0.1)


def run_seed(
    url: str,
    api_key: str,
    profile: str,
    seed: str,
    org_name: str,
    concurrency: str,
    as_json: bool,
    rows: str = "",
    wait: str = "0",
) -> None:
    """Validate the raw option values, seed, and print the counts per type (or JSON).

    ``rows`` is the number of event rows ("" for the profile's default, "0" for none).
    """
    if not url:
        raise _fail("--url is required", 2)
    if not api_key:
        raise _fail("--api-key is required", 2)
    if profile not in PROFILES:
        raise _fail(f"unknown --profile {profile!r} (choose from {', '.join(PROFILES)})", 2)
    seed_value = _int_option(seed, "--seed", minimum=0)
    inflight = _int_option(concurrency, "--concurrency", minimum=1)
    event_rows = _int_option(rows, "--rows", minimum=0) if str(rows).strip() else None
    _wait_for_server(url, _int_option(wait, "--wait", minimum=0))
    try:
        result = seed_org_sync(
            url,
            api_key,
            profile=profile,
            seed=seed_value,
            org_name=org_name or None,
            concurrency=inflight,
            rows=event_rows,
        )
    except SeedInputError as exc:
        raise _fail(str(exc), 2) from None
    except SeedError as exc:
        # A rejected key or an unreachable URL is bad input; anything else is a failure.
        bad_input = exc.http and (exc.status in (401, 403) or exc.status is None)
        raise _fail(str(exc), 2 if bad_input else 1) from None
    if as_json:
        summary = {
            "org_id": result.org_id,
            "org_name": result.org_name,
            "profile": result.profile,
            "seed": result.seed,
            "counts": result.counts,
            "total": result.total,
            "patches": result.patches,
            "requests": result.requests,
            "elapsed_seconds": round(result.elapsed, 3),
            "notes": result.notes,
            "rows": result.rows,
            "events": {
                kind: {"rows": c.rows, "live": c.live, "comments": c.comments, "containers": c.containers}
                for kind, c in result.events.items()
            },
            "event_rows": result.event_rows,
            "event_requests": result.event_requests,
            "event_seconds": round(result.event_elapsed, 3),
            "attachments": result.attachments,
        }
        print(json.dumps(summary, ensure_ascii=False))
        return
    print(
        f"seeded org {result.org_name!r} ({result.org_id}) with profile {result.profile}, seed {result.seed}: "
        f"{result.total} objects, {result.patches} updates, {result.event_rows} event rows, "
        f"{result.requests} requests in {result.elapsed:.2f} s"
    )
    for line in [*result.summary_lines(), *result.event_lines()]:
        print("  " + line)
    for note in result.notes:
        print(f"note: {note}")
