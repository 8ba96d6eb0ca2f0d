"""pytest plugin: a sandbox server per test session, a fresh org (or two) per test.

Enabled project-wide by ``pytest_plugins = ["braintrust_migrate.sandbox.testing"]``.
Tests talk to the server over real HTTP only (``sandbox_server.url`` + an org's key).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # keep plugin import cheap: the server is imported when first used
    from braintrust_migrate.sandbox.objects.admin import SandboxOrg
    from braintrust_migrate.sandbox.server import SandboxServer


@dataclass(frozen=True)
class OrgPair:
    source: SandboxOrg
    dest: SandboxOrg


def unique_org_name(prefix: str = "org") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """One in-memory sandbox server for the whole test session."""
    from braintrust_migrate.sandbox.server import SandboxServer

    with SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox_org(sandbox_server: SandboxServer) -> SandboxOrg:
    """A fresh org (default users, built-in groups) and its API key."""
    return sandbox_server.create_org(unique_org_name())


@pytest.fixture
def sandbox_orgs(sandbox_server: SandboxServer) -> OrgPair:
    """A fresh ``source`` and ``dest`` org, each with its own key."""
    return OrgPair(
        source=sandbox_server.create_org(unique_org_name("source")),
        dest=sandbox_server.create_org(unique_org_name("dest")),
    )
