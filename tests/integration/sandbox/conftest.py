"""Fixtures for the sandbox tests: spec-checking API clients bound to fresh orgs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from tests.integration.sandbox.helpers import Api


@pytest.fixture
def make_api(sandbox_server: SandboxServer) -> Iterator[Callable[[str | None], Api]]:
    clients: list[Api] = []

    def make(key: str | None) -> Api:
        api = Api(sandbox_server.url, key)
        clients.append(api)
        return api

    yield make
    for api in clients:
        api.close()


@pytest.fixture
def api(make_api: Callable[[str | None], Api], sandbox_org: SandboxOrg) -> Api:
    """A client for a fresh org."""
    return make_api(sandbox_org.api_key)


@pytest.fixture
def project(api: Api) -> dict:
    return api.post("/v1/project", {"name": "main"})
