"""`validate` against a fake API: one row per check, the right verdict and fix."""

from __future__ import annotations

import httpx
import pytest

from braintrust_migrate.orgs import SameOrgError
from braintrust_migrate.validate import READ_PROBES, WRITE_PROBE_PREFIX, run_validation
from tests.unit.fakes import FakeApi, make_client

ORG_A = {"id": "11111111-1111-1111-1111-111111111111", "name": "Acme"}
ORG_B = {"id": "22222222-2222-2222-2222-222222222222", "name": "Beta"}


def healthy(orgs: list[dict]) -> FakeApi:
    api = FakeApi().on("GET", "/v1", httpx.Response(200, text="Hello, World!"))
    api.on("GET", "/v1/organization", httpx.Response(200, json={"objects": orgs}))
    for path in (probe.path for probe in READ_PROBES):
        body = [] if path == "/v1/acl/list_org" else {"objects": []}
        api.on("GET", path, httpx.Response(200, json=body))
    return api


def by_name(result, side: str) -> dict:
    return {check.name: check for check in result.checks if check.side == side}


async def test_all_checks_pass() -> None:
    src, dst = healthy([ORG_A]), healthy([ORG_B])
    async with make_client(src, side="source") as s, make_client(dst, side="dest") as d:
        result = await run_validation(s, d)
    assert result.ok
    assert result.orgs["source"].org_name == "Acme"
    assert result.orgs["dest"].org_id == ORG_B["id"]
    checks = by_name(result, "source")
    assert checks["reachable"].status == "pass"
    assert all(checks[f"read {label}"].status == "pass" for label in (p.label for p in READ_PROBES))
    assert by_name(result, "dest")["write access"].status == "skip"
    # GET /v1 is sent without credentials
    assert "authorization" not in src.calls[0].headers


async def test_rejected_key_fails_with_the_variable_to_fix() -> None:
    src = healthy([ORG_A])
    dst = FakeApi().on("GET", "/v1", httpx.Response(200, text="Hello, World!"))
    dst.on("GET", "/v1/organization", httpx.Response(401, text="Invalid API key"))
    async with make_client(src, side="source") as s, make_client(dst, side="dest") as d:
        result = await run_validation(s, d)
    assert not result.ok
    check = by_name(result, "dest")["api key"]
    assert check.status == "fail"
    assert "destination API key was rejected" in check.detail
    assert "BT_DEST_API_KEY" in check.fix


async def test_unreachable_url() -> None:
    src = FakeApi().on("GET", "/v1", httpx.ConnectError("Name or service not known"))
    async with (
        make_client(src, side="source", attempts=0) as s,
        make_client(healthy([ORG_B]), side="dest") as d,
    ):
        result = await run_validation(s, d)
    checks = by_name(result, "source")
    assert list(checks) == ["reachable"]
    assert checks["reachable"].status == "fail"
    assert "could not reach the source API at https://api.example.test/v1" in checks["reachable"].detail
    assert "BT_SOURCE_URL" in checks["reachable"].fix


async def test_key_with_several_orgs_needs_org_name() -> None:
    async with (
        make_client(healthy([ORG_A, ORG_B]), side="source") as s,
        make_client(healthy([ORG_B]), side="dest") as d,
    ):
        result = await run_validation(s, d)
    check = by_name(result, "source")["organization"]
    assert check.status == "fail"
    assert "BT_SOURCE_ORG_NAME is not set" in check.detail


async def test_org_name_chooses_and_is_passed_to_lists() -> None:
    src = healthy([ORG_A, ORG_B])
    async with make_client(src, side="source") as s, make_client(healthy([ORG_A]), side="dest") as d:
        result = await run_validation(s, d, source_org="Beta")
    assert result.orgs["source"].org_name == "Beta"
    project_calls = [c for c in src.calls if c.url.path == "/v1/project"]
    assert project_calls[0].url.params["org_name"] == "Beta"


async def test_unknown_org_name() -> None:
    async with (
        make_client(healthy([ORG_A]), side="source") as s,
        make_client(healthy([ORG_B]), side="dest") as d,
    ):
        result = await run_validation(s, d, source_org="Nope")
    assert "is not among the orgs" in by_name(result, "source")["organization"].detail


async def test_same_org_is_refused() -> None:
    async with (
        make_client(healthy([ORG_A]), side="source") as s,
        make_client(healthy([ORG_A]), side="dest") as d,
    ):
        with pytest.raises(SameOrgError, match="both act in org 'Acme'"):
            await run_validation(s, d, write_check=True)


async def test_read_refused_on_one_type() -> None:
    src = healthy([ORG_A])
    src.routes[("GET", "/v1/ai_secret")] = [httpx.Response(403, text="no read on ai_secret")]
    async with make_client(src, side="source") as s, make_client(healthy([ORG_B]), side="dest") as d:
        result = await run_validation(s, d)
    check = by_name(result, "source")["read ai_secrets"]
    assert check.status == "fail"
    assert "GET /v1/ai_secret" in check.detail
    assert not result.ok


@pytest.mark.parametrize("delete_status", [200, 403])
async def test_write_check_creates_and_deletes_a_probe(delete_status: int) -> None:
    dst = healthy([ORG_B])
    dst.on("POST", "/v1/project", lambda r: httpx.Response(200, json={"id": "p-1", "name": "x"}))
    dst.on("DELETE", "/v1/project/p-1", httpx.Response(delete_status, json={"id": "p-1"}))
    async with make_client(healthy([ORG_A]), side="source") as s, make_client(dst, side="dest") as d:
        result = await run_validation(s, d, write_check=True)
    created = next(c for c in dst.calls if c.method == "POST")
    assert WRITE_PROBE_PREFIX in created.content.decode()
    check = by_name(result, "dest")["write access"]
    assert check.status == ("pass" if delete_status == 200 else "fail")
    if delete_status != 200:
        assert "delete project" in check.fix


async def test_selected_resources_limit_the_read_probes() -> None:
    src = healthy([ORG_A])
    async with make_client(src, side="source") as s, make_client(healthy([ORG_B]), side="dest") as d:
        result = await run_validation(s, d, resources=["datasets", "prompts"])
    names = set(by_name(result, "source"))
    assert {"read datasets", "read prompts", "read projects", "read users"} <= names
    assert "read ai_secrets" not in names


async def test_selected_projects_must_exist_in_the_source() -> None:
    def projects(request: httpx.Request) -> httpx.Response:
        name = request.url.params.get("project_name")
        found = [{"id": "p1", "name": name}] if name == "Known" else []
        return httpx.Response(200, json={"objects": found})

    src = healthy([ORG_A])
    src.routes[("GET", "/v1/project")] = [projects]
    async with make_client(src, side="source") as s, make_client(healthy([ORG_B]), side="dest") as d:
        result = await run_validation(s, d, projects=["Known", "Typo"])
    checks = by_name(result, "source")
    assert checks["project 'Known'"].status == "pass"
    assert checks["project 'Typo'"].status == "fail"
    assert "MIGRATION_PROJECTS" in checks["project 'Typo'"].fix
    assert not result.ok


async def test_state_dir_must_be_writable(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    async with (
        make_client(healthy([ORG_A]), side="source") as s,
        make_client(healthy([ORG_B]), side="dest") as d,
    ):
        good = await run_validation(s, d, state_dir=tmp_path / "state")
        bad = await run_validation(s, d, state_dir=blocker / "state")
    assert by_name(good, "local")["state dir"].status == "pass"
    assert (tmp_path / "state").is_dir()
    check = by_name(bad, "local")["state dir"]
    assert check.status == "fail"
    assert "MIGRATION_STATE_DIR" in check.detail


@pytest.mark.parametrize(
    ("btql", "status"),
    [
        (httpx.Response(200, json={"data": [{"n": 3}]}), "pass"),
        (httpx.Response(404, json={"error": "Not found"}), "warn"),
        (httpx.Response(403, text="no read on logs"), "fail"),
    ],
)
async def test_event_rows_are_probed_through_btql(btql: httpx.Response, status: str) -> None:
    src = healthy([ORG_A])
    src.routes[("GET", "/v1/project")] = [httpx.Response(200, json={"objects": [{"id": "p1", "name": "P"}]})]
    src.on("POST", "/btql", btql)
    async with make_client(src, side="source") as s, make_client(healthy([ORG_B]), side="dest") as d:
        result = await run_validation(s, d)
    check = by_name(result, "source")["read event rows"]
    assert check.status == status
    assert "project_logs('p1')" in next(c for c in src.calls if c.url.path == "/btql").content.decode()
