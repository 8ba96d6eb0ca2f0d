"""Wiring faults into an app, the admin API and the CLI (flags, faults file)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.routing import BaseRoute, Route

from braintrust_migrate.sandbox.faults.controller import FaultController, controller_of
from braintrust_migrate.sandbox.faults.settings import FaultSettings

# --- wiring: app, admin API, CLI ----------------------------------------------------------------


def install(state: Any) -> FaultController:
    """Create the controller of an app's :class:`~braintrust_migrate.sandbox.http.app.SandboxState`."""
    controller = FaultController(state.store)
    state.settings["faults"] = controller
    return controller


def admin_routes(state: Any, guarded: Callable[[Callable[[dict[str, Any]], Any]], Any]) -> list[BaseRoute]:
    """``GET/PUT/DELETE /_sandbox/faults`` (``guarded`` checks the admin key and parses the body).

    PUT body: ``{"org": <org name or null>, "settings": {...} or null}`` (null clears that
    scope); DELETE clears every scope and the counters. All three answer like GET.
    """
    controller: FaultController = state.settings["faults"]

    def get(_: dict[str, Any]) -> dict[str, Any]:
        return controller.describe()

    def put(body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"org", "settings"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}; expected 'org' and 'settings'")
        if "settings" not in body:
            raise ValueError("'settings' is required (an object, or null to clear)")
        org = body.get("org")
        if org is not None and not isinstance(org, str):
            raise ValueError("'org' must be an org name or null")
        raw = body["settings"]
        controller.set(FaultSettings.from_dict(raw) if raw is not None else None, org=org)
        return controller.describe()

    def delete(_: dict[str, Any]) -> dict[str, Any]:
        controller.clear()
        return controller.describe()

    return [
        Route("/_sandbox/faults", guarded(get), methods=["GET"]),
        Route("/_sandbox/faults", guarded(put), methods=["PUT"]),
        Route("/_sandbox/faults", guarded(delete), methods=["DELETE"]),
    ]


def load_faults_file(text: str) -> tuple[FaultSettings | None, dict[str, FaultSettings]]:
    """Parse a faults file (YAML or JSON): ``{server: {...}, orgs: {<org name>: {...}}}``."""
    import yaml

    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict) or set(data) - {"server", "orgs"}:
        raise ValueError("a faults file is a mapping with 'server' and/or 'orgs'")
    server = FaultSettings.from_dict(data["server"]) if data.get("server") is not None else None
    orgs_raw = data.get("orgs") or {}
    if not isinstance(orgs_raw, dict):
        raise ValueError("'orgs' must map org names to fault settings")
    return server, {str(name): FaultSettings.from_dict(value or {}) for name, value in orgs_raw.items()}


# Field of FaultSettings for each ``sandbox serve`` flag that takes one value.
CLI_FLAGS = {
    "latency_ms": "--latency-ms",
    "latency_jitter_ms": "--latency-jitter-ms",
    "rate_limit_rps": "--rate-limit-rps",
    "rate_limit_burst": "--rate-limit-burst",
    "max_concurrent_per_key": "--max-concurrent-per-key",
    "retry_after_seconds": "--retry-after",
    "retry_after_format": "--retry-after-format",
    "error_rate": "--error-rate",
    "max_request_bytes": "--max-request-bytes",
    "btql_max_rows": "--btql-max-rows",
    "drop_rate": "--drop-rate",
    "drop_phase": "--drop-phase",
    "seed": "--fault-seed",
    "include_paths": "--fault-path",
    "exclude_paths": "--fault-exclude-path",
    "methods": "--fault-method",
}


def configure_from_cli(server: Any, flags: Mapping[str, Any], faults_file: str | None) -> None:
    """Apply ``sandbox serve`` fault flags (server-wide) and a faults file (server and per org).

    ``flags`` maps :class:`FaultSettings` field names to flag values (None / empty: not given).
    Flags override the file's server-wide settings field by field. Raises ``ValueError``.
    """
    server_settings: FaultSettings | None = None
    per_org: dict[str, FaultSettings] = {}
    if faults_file is not None:
        try:
            with open(faults_file, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ValueError(f"cannot read --faults-file {faults_file}: {exc.strerror or exc}") from None
        try:
            server_settings, per_org = load_faults_file(text)
        except Exception as exc:  # yaml errors too
            raise ValueError(f"--faults-file {faults_file}: {exc}") from None
    given = {k: v for k, v in flags.items() if v is not None and v != [] and v != ()}
    if given:
        base = server_settings.to_dict() if server_settings is not None else {}
        try:
            server_settings = FaultSettings.from_dict({**base, **given})
        except ValueError as exc:
            names = ", ".join(CLI_FLAGS.get(k, k) for k in sorted(given))
            raise ValueError(f"bad fault flags ({names}): {exc}") from None
    controller = controller_of(server.app)
    if server_settings is not None:
        controller.set(server_settings)
    for org, settings in per_org.items():
        controller.set(settings, org=org)
