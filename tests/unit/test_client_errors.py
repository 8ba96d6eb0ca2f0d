"""Error messages a user can act on, and secrets kept out of them."""

from __future__ import annotations

import httpx
import pytest

from braintrust_migrate.client import AuthenticationError, PermissionDeniedError
from tests.unit.fakes import FakeApi, make_client


@pytest.mark.parametrize(("side", "var"), [("source", "BT_SOURCE_API_KEY"), ("dest", "BT_DEST_API_KEY")])
async def test_401_names_the_key_variable(side: str, var: str) -> None:
    api = FakeApi().on("GET", "/v1/project", httpx.Response(401, text="Invalid API key"))
    async with make_client(api, side=side) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_json("/v1/project")
    label = "source" if side == "source" else "destination"
    assert f"the {label} API key was rejected" in info.value.message
    assert f"check {var}" in info.value.message


async def test_403_says_which_operation() -> None:
    api = FakeApi().on("POST", "/v1/role", httpx.Response(403, json={"error": "missing create permission"}))
    async with make_client(api, side="dest") as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.post_json("/v1/role", {"name": "r"})
    assert "destination API key is not allowed to POST /v1/role" in info.value.message
    assert "missing create permission" in info.value.message


async def test_secret_echoed_by_server_is_scrubbed() -> None:
    api = FakeApi().on("GET", "/v1/x", httpx.Response(400, text="bad key sk-test-secret-key-0001 here"))
    async with make_client(api) as client:
        with pytest.raises(Exception) as info:
            await client.get_json("/v1/x")
    for text in (str(info.value), info.value.body, repr(info.value.to_dict())):
        assert "sk-test-secret-key-0001" not in text
    assert "sk-…0001" in info.value.body


async def test_long_bodies_are_trimmed() -> None:
    api = FakeApi().on("GET", "/v1/x", httpx.Response(500, text="x" * 5000))
    async with make_client(api, attempts=0) as client:
        with pytest.raises(Exception) as info:
            await client.get_json("/v1/x")
    assert len(info.value.body) <= 501


def test_client_repr_has_no_key() -> None:
    client = make_client(FakeApi())
    assert "sk-test" not in repr(client)
