"""``GET /version``: server info, with ``logs3_payload_max_bytes`` derived from the 413 limit."""

from __future__ import annotations

import httpx

from braintrust_migrate import __version__
from braintrust_migrate.sandbox.faults import FaultSettings
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer


def _version(server: SandboxServer, org: SandboxOrg | None = None) -> dict:
    headers = {"Authorization": f"Bearer {org.api_key}"} if org else {}
    response = httpx.get(server.url + "/version", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    return response.json()


def test_version_shape_without_a_size_limit(sandbox_server: SandboxServer, sandbox_org: SandboxOrg) -> None:
    for info in (_version(sandbox_server), _version(sandbox_server, sandbox_org)):
        assert info == {"version": __version__, "server": "braintrust-migrate-sandbox", "sandbox": True}


def test_logs3_limit_is_advertised_for_the_callers_scope() -> None:
    with SandboxServer() as server:
        limited, other = server.create_org("limited"), server.create_org("other")
        server.set_faults(FaultSettings(max_request_bytes=5 * 1024 * 1024), org=limited.name)
        assert _version(server, limited)["logs3_payload_max_bytes"] == 5 * 1024 * 1024
        assert "logs3_payload_max_bytes" not in _version(server, other)
        assert "logs3_payload_max_bytes" not in _version(server)

        server.set_faults(FaultSettings(max_request_bytes=1_000_000))
        assert _version(server)["logs3_payload_max_bytes"] == 1_000_000
        assert _version(server, other)["logs3_payload_max_bytes"] == 1_000_000
        assert _version(server, limited)["logs3_payload_max_bytes"] == 5 * 1024 * 1024

        # A limit that does not cover POST /logs3 is not advertised.
        server.set_faults(FaultSettings(max_request_bytes=1_000_000, include_paths=("/v1",)))
        assert "logs3_payload_max_bytes" not in _version(server)
