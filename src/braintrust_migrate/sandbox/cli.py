"""``braintrust-migrate sandbox serve``: run the sandbox server in the foreground.

Orgs come from ``BT_SANDBOX_ORGS="source=sk-src,dest=sk-dst"``, ``--orgs-file`` (YAML)
and/or ``--org NAME[=KEY]`` (repeatable; a key given there is visible in ``ps``, so
this warns). The admin key likewise comes from ``BT_SANDBOX_ADMIN_KEY`` (or ``--admin-key``)::

    orgs:
      - name: source
        api_key: sk-source-key          # optional: generated when absent
        users: [alice@example.com]      # optional: default 3 deterministic users
      - name: dest
        keys:                           # optional: restricted keys (rights from ACLs only)
          - api_key: sk-dest-viewer     # optional: generated when absent
            role: viewer                # owner | engineer | viewer (built-in groups)
          - api_key: sk-dest-one-project
            grants:                     # user ACLs: object_type, object_id, permissions
              - {object_type: organization, permissions: [read]}
    grants:                             # optional: one key acting in several orgs
      - api_key: sk-source-key
        org_name: dest

An org entry's own ``api_key`` is an owner key unless the entry has ``role`` / ``grants``
(then it is a restricted key and the org gets a generated owner key). On the command line and
in BT_SANDBOX_ORGS, ``NAME=KEY:ROLE`` (or ``NAME=:ROLE``, key generated) adds a restricted key.

With a database file, orgs that already exist are reused (a given key is added to
them). The keys are printed: they are local throwaway keys, and you need them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import typer
import yaml

app = typer.Typer(help="Run a local Braintrust-compatible API server (the sandbox).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Run a local Braintrust-compatible API server (the sandbox)."""


class _UsageError(Exception):
    pass


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


ORGS_ENV = "BT_SANDBOX_ORGS"
ADMIN_KEY_ENV = "BT_SANDBOX_ADMIN_KEY"
ALLOWED_HOSTS_ENV = "BT_SANDBOX_ALLOWED_HOSTS"
MAX_BODY_ENV = "BT_SANDBOX_MAX_BODY_BYTES"


ROLES = ("owner", "engineer", "viewer")


def _parse_org(spec: str, where: str = "--org") -> dict[str, Any]:
    name, sep, key = spec.partition("=")
    name, key = name.strip(), key.strip()
    key, colon, role = key.partition(":")
    key, role = key.strip(), role.strip().lower()
    if not name or (sep and not key and not colon) or (colon and role not in ROLES):
        # Never echo the entry: it may hold a key.
        shown = f"{name}=" if name else "an entry with no name"
        raise _UsageError(
            f"{where} expects NAME or NAME=KEY (or NAME=KEY:ROLE, ROLE: {', '.join(ROLES)}), got {shown}"
        )
    if colon:
        return {"name": name, "keys": [{"api_key": key or None, "role": role}]}
    return {"name": name, "api_key": key or None}


def _env_orgs() -> list[dict[str, Any]]:
    raw = os.environ.get(ORGS_ENV, "")
    return [_parse_org(part, ORGS_ENV) for part in raw.split(",") if part.strip()]


def _warn_visible(flag: str, instead: str) -> None:
    typer.echo(
        f"warning: {flag} puts a key on the command line, where `ps` shows it; use {instead}", err=True
    )


def _load_orgs_file(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise _UsageError(f"cannot read --orgs-file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise _UsageError(f"--orgs-file {path} is not valid YAML: {exc}") from None
    if isinstance(data, list):
        data = {"orgs": data}
    if not isinstance(data, dict):
        raise _UsageError(f"--orgs-file {path}: expected a mapping with 'orgs' (and optional 'grants')")
    orgs, grants = data.get("orgs") or [], data.get("grants") or []
    if not isinstance(orgs, list) or not all(isinstance(o, dict) and o.get("name") for o in orgs):
        raise _UsageError(f"--orgs-file {path}: 'orgs' must be a list of mappings, each with a 'name'")
    if not isinstance(grants, list) or not all(
        isinstance(g, dict) and g.get("api_key") and g.get("org_name") for g in grants
    ):
        raise _UsageError(f"--orgs-file {path}: each grant needs 'api_key' and 'org_name'")
    for org in orgs:
        users = org.get("users")
        if users is not None and not (isinstance(users, list) and all(isinstance(u, str) for u in users)):
            raise _UsageError(f"--orgs-file {path}: 'users' of org {org['name']!r} must be a list of emails")
        if org.get("role") is not None or org.get("grants") is not None:  # the entry's key is restricted
            org["keys"] = [
                *(org.get("keys") or []),
                {k: org.pop(k, None) for k in ("api_key", "role", "grants")},
            ]
        keys = org.get("keys") or []
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise _UsageError(f"--orgs-file {path}: 'keys' of org {org['name']!r} must be a list of mappings")
        for entry in keys:
            role = entry.get("role")
            if role is not None and str(role).lower() not in ROLES:
                raise _UsageError(
                    f"--orgs-file {path}: role of a key of org {org['name']!r} must be one of {', '.join(ROLES)}"
                )
    return orgs, grants


def _provision(server: Any, orgs: list[dict[str, Any]], grants: list[dict[str, str]]) -> list[str]:
    """Create the orgs, keys and grants; returns one line per restricted key made, to print."""
    from braintrust_migrate.sandbox.objects import admin

    existing = {o.name for o in server.orgs()}
    for org in orgs:
        name, key = str(org["name"]), org.get("api_key")
        if name in existing:
            if key:
                _ensure_key(server, name, str(key))
            continue
        try:
            server.create_org(name, str(key) if key else None, org.get("users"))
        except ValueError as exc:
            if key and "already in use" in str(exc):  # the key exists (e.g. it is another org's): grant it
                server.create_org(name, None, org.get("users"))
                admin.grant_org(server.store, str(key), name)
            else:
                raise _UsageError(str(exc)) from None
        existing.add(name)
    made = [
        line
        for org in orgs
        for entry in org.get("keys") or []
        for line in _restricted_key(server, org, entry)
    ]
    for grant in grants:
        try:
            server.grant_org(str(grant["api_key"]), str(grant["org_name"]))
        except ValueError as exc:
            raise _UsageError(f"grant {grant['org_name']!r}: {exc}") from None
    return made


def _restricted_key(server: Any, org: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    from braintrust_migrate.sandbox.objects import admin

    org_name = str(org["name"])
    key = str(entry["api_key"]) if entry.get("api_key") else None
    if key is not None:
        with server.store.transaction() as tx:
            if tx.key_exists(key):
                return []  # a database file that already has it
    try:
        made = admin.create_key(
            server.store, org_name, role=entry.get("role"), grants=entry.get("grants"), api_key=key
        )
    except ValueError as exc:
        raise _UsageError(f"a key of org {org_name!r}: {exc}") from None
    return [f"org {org_name}: {made.role} key {made.api_key}"]


def _ensure_key(server: Any, org_name: str, key: str) -> None:
    from braintrust_migrate.sandbox.objects import admin

    with server.store.transaction() as tx:
        known = tx.key_exists(key)
    if known:
        admin.grant_org(server.store, key, org_name)
    else:
        admin.add_org_key(server.store, org_name, key)


@app.command()
def serve(
    port: int = typer.Option(8000, "--port", help="Port to listen on (0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    db: str = typer.Option(":memory:", "--db", help="SQLite file to keep data in (default: in memory)."),
    org: list[str] = typer.Option(
        [],
        "--org",
        help=(
            "An org to create: NAME or NAME=API_KEY (an owner key), or NAME=API_KEY:ROLE for a restricted "
            f"key (ROLE: owner, engineer or viewer; its rights come from ACLs). Repeatable; keys better in {ORGS_ENV}."
        ),
    ),
    orgs_file: Path | None = typer.Option(None, "--orgs-file", help="YAML file listing orgs and grants."),
    admin_key: str | None = typer.Option(
        None, "--admin-key", help=f"Key for the /_sandbox admin API (better: {ADMIN_KEY_ENV})."
    ),
    allowed_host: list[str] = typer.Option(
        [],
        "--allowed-host",
        help=f"Host name to answer besides loopback and IPs (repeatable; '*': any; or {ALLOWED_HOSTS_ENV}).",
    ),
    max_body_bytes: int | None = typer.Option(
        None,
        "--max-body-bytes",
        help=f"Refuse request bodies above N bytes with 413 (default 64 MiB; or {MAX_BODY_ENV}).",
    ),
    latency_ms: float | None = typer.Option(None, "--latency-ms", help="Fault: fixed latency per request."),
    latency_jitter_ms: float | None = typer.Option(
        None, "--latency-jitter-ms", help="Fault: extra random latency."
    ),
    rate_limit_rps: float | None = typer.Option(
        None, "--rate-limit-rps", help="Fault: 429 above N req/s per key."
    ),
    rate_limit_burst: int | None = typer.Option(None, "--rate-limit-burst", help="Fault: token bucket size."),
    max_concurrent_per_key: int | None = typer.Option(
        None, "--max-concurrent-per-key", help="Fault: 429 above N requests in flight per key."
    ),
    retry_after: int | None = typer.Option(None, "--retry-after", help="Fault: Retry-After seconds on 429s."),
    retry_after_format: str | None = typer.Option(
        None, "--retry-after-format", help="Fault: Retry-After as seconds|http-date|random."
    ),
    error_rate: float | None = typer.Option(None, "--error-rate", help="Fault: share of random 5xx (0-1)."),
    max_request_bytes: int | None = typer.Option(
        None, "--max-request-bytes", help="Fault: 413 above N bytes."
    ),
    btql_max_rows: int | None = typer.Option(None, "--btql-max-rows", help="Fault: 504 for BTQL limit > N."),
    drop_rate: float | None = typer.Option(None, "--drop-rate", help="Fault: share of dropped connections."),
    drop_phase: str | None = typer.Option(None, "--drop-phase", help="Fault: drop before|after|random."),
    fault_seed: int | None = typer.Option(None, "--fault-seed", help="Fault: random seed (default 0)."),
    fault_path: list[str] = typer.Option([], "--fault-path", help="Fault only these path prefixes."),
    fault_exclude_path: list[str] = typer.Option(
        [], "--fault-exclude-path", help="Never fault these prefixes."
    ),
    fault_method: list[str] = typer.Option([], "--fault-method", help="Fault only these HTTP methods."),
    faults_file: Path | None = typer.Option(
        None, "--faults-file", help="YAML: {server: {...}, orgs: {name: {...}}}."
    ),
) -> None:
    """Serve the Braintrust-compatible sandbox API until Ctrl-C / SIGTERM."""
    from braintrust_migrate.sandbox import faults
    from braintrust_migrate.sandbox.http.guard import DEFAULT_MAX_BODY_BYTES
    from braintrust_migrate.sandbox.server import SandboxServer

    try:
        flagged = [_parse_org(o) for o in org]
        if any(o["api_key"] for o in flagged):
            _warn_visible("--org NAME=KEY", f"{ORGS_ENV} or --orgs-file")
        wanted = _env_orgs() + flagged
        if admin_key is not None:
            _warn_visible("--admin-key", ADMIN_KEY_ENV)
        admin_key = admin_key or os.environ.get(ADMIN_KEY_ENV) or None
        grants: list[dict[str, str]] = []
        if orgs_file is not None:
            more, grants = _load_orgs_file(orgs_file)
            wanted += more
        if not 0 <= port <= 65535:
            raise _UsageError(f"--port must be between 0 and 65535, got {port}")
        hosts = [*allowed_host, *os.environ.get(ALLOWED_HOSTS_ENV, "").split(",")]
        body_cap = _max_body(max_body_bytes, DEFAULT_MAX_BODY_BYTES)
    except _UsageError as exc:
        raise _fail(str(exc)) from None

    try:
        server = SandboxServer(
            db, host=host, port=port, admin_key=admin_key, allowed_hosts=hosts, max_body_bytes=body_cap
        )
    except Exception as exc:  # e.g. an unreadable database file
        raise _fail(f"cannot open database {db!r}: {exc}") from None
    fault_flags = {
        "latency_ms": latency_ms,
        "latency_jitter_ms": latency_jitter_ms,
        "rate_limit_rps": rate_limit_rps,
        "rate_limit_burst": rate_limit_burst,
        "max_concurrent_per_key": max_concurrent_per_key,
        "retry_after_seconds": retry_after,
        "retry_after_format": retry_after_format,
        "error_rate": error_rate,
        "max_request_bytes": max_request_bytes,
        "btql_max_rows": btql_max_rows,
        "drop_rate": drop_rate,
        "drop_phase": drop_phase,
        "seed": fault_seed,
        "include_paths": fault_path,
        "exclude_paths": fault_exclude_path,
        "methods": fault_method,
    }
    try:
        restricted = _provision(server, wanted, grants)
        faults.configure_from_cli(server, fault_flags, str(faults_file) if faults_file else None)
    except (_UsageError, ValueError) as exc:
        server.close()
        raise _fail(str(exc)) from None
    try:
        server.start()
    except OSError as exc:
        server.close()
        reason = (
            "is already in use" if exc.errno in (98, 48, 10048) else f"cannot be used ({exc.strerror or exc})"
        )
        raise _fail(f"port {port} on {host} {reason}") from None

    stop = threading.Event()
    # SIGINT is handled here, not left to KeyboardInterrupt: a shell starts `serve &` with SIGINT
    # ignored, and Python then never raises it, so `kill -INT` would not stop the server.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _announce(server, restricted)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
        typer.echo("sandbox stopped")


def _max_body(flag: int | None, default: int) -> int:
    if flag is not None:
        if flag <= 0:
            raise _UsageError(f"--max-body-bytes must be a positive number of bytes, got {flag}")
        return flag
    raw = os.environ.get(MAX_BODY_ENV, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise _UsageError(f"{MAX_BODY_ENV} must be a positive number of bytes, got {raw!r}")
    return int(raw)


def _announce(server: Any, restricted: list[str]) -> None:
    typer.echo(f"Braintrust sandbox listening on {server.url}")
    typer.echo(f"admin key (header X-Sandbox-Admin-Key): {server.admin_key}")
    if server.app.state.sandbox.settings["faults"].active:
        typer.echo("fault injection is on (see GET /_sandbox/faults)")
    orgs = server.orgs()
    if not orgs:
        typer.echo("no orgs yet: pass --org NAME[=KEY] or create them through the admin API")
    for org in orgs:
        typer.echo(f"org {org.name}: api key {org.api_key}")
    for line in restricted:
        typer.echo(line)
    typer.echo("press Ctrl-C to stop")
    sys.stdout.flush()


@app.command("seed")
def seed(
    url: str = typer.Option("", "--url", help="Base URL of the Braintrust-compatible API."),
    api_key: str = typer.Option("", "--api-key", help="API key of the org to fill."),
    profile: str = typer.Option("small", "--profile", help="Size: small|medium|large."),
    seed: str = typer.Option("0", "--seed", help="Random seed: same seed and profile, same contents."),
    org_name: str = typer.Option("", "--org-name", help="Org to fill when the key sees several."),
    concurrency: str = typer.Option("8", "--concurrency", help="Requests in flight."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    rows: str = typer.Option("", "--rows", help="Event rows to write (default: per profile; 0: none)."),
    wait: str = typer.Option(
        "0", "--wait", help="Seconds to wait for the server to accept connections (one just started with &)."
    ),
) -> None:
    """Fill an org with a realistic, deterministic set of objects of every type, and event rows."""
    from braintrust_migrate.sandbox.seed.cli import run_seed

    run_seed(url, api_key, profile, seed, org_name, concurrency, as_json, rows, wait)


if __name__ == "__main__":
    app()
