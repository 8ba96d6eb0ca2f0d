"""The generic object lifecycle, for every object type the spec defines."""

from __future__ import annotations

from typing import Any

import pytest

from braintrust_migrate.sandbox.objects.model import TYPES
from tests.integration.sandbox.factories import CRUD_TYPES, World
from tests.integration.sandbox.helpers import Api


def locator(type_name: str, obj: dict[str, Any]) -> dict[str, str]:
    """Extra query params GET-by-id needs (views are addressed by their object too)."""
    return {"object_type": obj["object_type"], "object_id": obj["object_id"]} if type_name == "view" else {}


def list_params(type_name: str, obj: dict[str, Any]) -> dict[str, str]:
    return locator(type_name, obj)


def patch_body(type_name: str, obj: dict[str, Any]) -> dict[str, Any]:
    if type_name == "view":
        return {
            "object_type": obj["object_type"],
            "object_id": obj["object_id"],
            "name": obj["name"] + "-renamed",
        }
    if type_name == "env_var":
        return {"name": obj["name"], "metadata": {"patched": True}}
    if type_name in ("ai_secret",):
        return {"metadata": {"patched": True}}
    return {"description": "patched"}


@pytest.mark.parametrize("type_name", CRUD_TYPES)
def test_lifecycle(api: Api, type_name: str) -> None:
    t = TYPES[type_name]
    world = World(api)
    created = api.post(t.base, world.body(type_name, "alpha"))
    item = f"{t.base}/{created['id']}"

    assert api.get(item, **locator(type_name, created))["id"] == created["id"]
    assert created["id"] in [o["id"] for o in api.list(t.base, **list_params(type_name, created))]

    if t.has("patch"):
        patched = api.patch(item, patch_body(type_name, created))
        assert patched["id"] == created["id"]
        assert patched.get("created") == created.get("created")
        for key, value in patch_body(type_name, created).items():
            if key not in ("object_type", "object_id"):
                assert (
                    patched[key] == value
                    if not isinstance(value, dict)
                    else value.items() <= patched[key].items()
                )

    deleted = api.delete(item, locator(type_name, created)) if type_name == "view" else api.delete(item)
    assert deleted["id"] == created["id"]
    api.fails(404, "GET", item, params=locator(type_name, created))
    assert created["id"] not in [o["id"] for o in api.list(t.base, **list_params(type_name, created))]
    api.fails(404, "DELETE", item, **({"json": locator(type_name, created)} if type_name == "view" else {}))


@pytest.mark.parametrize("type_name", [n for n in CRUD_TYPES if TYPES[n].identity and n != "environment"])
def test_post_returns_existing_unmodified(api: Api, type_name: str) -> None:
    t = TYPES[type_name]
    world = World(api)
    first = api.post(t.base, world.body(type_name, "same", variant=0))
    again = api.post(t.base, world.body(type_name, "same", variant=1))
    assert again == first  # same id, nothing changed
    other = api.post(t.base, world.body(type_name, "different", variant=1))
    assert other["id"] != first["id"]


@pytest.mark.parametrize("type_name", [n for n in CRUD_TYPES if TYPES[n].has("put")])
def test_put_creates_then_replaces(api: Api, type_name: str) -> None:
    t = TYPES[type_name]
    world = World(api)
    first = api.put(t.base, world.body(type_name, "replaced", variant=0))
    second_body = world.body(type_name, "replaced", variant=1)
    second = api.put(t.base, second_body)
    assert second["id"] == first["id"]
    assert second.get("created") == first.get("created")
    for key in ("description", "metadata", "view_data"):
        if key in second_body and type_name != "service_token":
            assert second[key] == second_body[key]
    listed = [o for o in api.list(t.base, **list_params(type_name, first)) if o["id"] == first["id"]]
    assert listed == [second] if type_name != "service_token" else len(listed) == 1


def test_put_replace_resets_fields_not_given(api: Api, project: dict) -> None:
    first = api.put(
        "/v1/project_tag", {"project_id": project["id"], "name": "t", "description": "d", "color": "red"}
    )
    second = api.put("/v1/project_tag", {"project_id": project["id"], "name": "t"})
    assert second["id"] == first["id"] and second["position"] == first["position"]
    assert second["description"] is None and second["color"] is None


def test_api_keys_and_service_tokens_never_dedupe(api: Api) -> None:
    world = World(api)
    for type_name in ("api_key", "service_token"):
        t = TYPES[type_name]
        a = api.post(t.base, world.body(type_name, "dup"))
        b = api.post(t.base, world.body(type_name, "dup"))
        assert a["id"] != b["id"] and a["key"] != b["key"]


def test_environment_duplicate_slug_is_refused(api: Api) -> None:
    api.post("/environment", {"name": "Production", "slug": "prod"})
    assert "slug" in api.fails(400, "POST", "/environment", json={"name": "Other", "slug": "prod"})
    other = api.post("/environment", {"name": "Staging", "slug": "staging"})
    assert "slug" in api.fails(400, "PATCH", f"/environment/{other['id']}", json={"slug": "prod"})


def test_patch_cannot_steal_an_identity(api: Api, project: dict) -> None:
    api.post("/v1/dataset", {"project_id": project["id"], "name": "a"})
    b = api.post("/v1/dataset", {"project_id": project["id"], "name": "b"})
    api.fails(400, "PATCH", f"/v1/dataset/{b['id']}", json={"name": "a"})


def test_deleted_identity_can_be_reused(api: Api, project: dict) -> None:
    first = api.post("/v1/experiment", {"project_id": project["id"], "name": "e"})
    api.delete(f"/v1/experiment/{first['id']}")
    second = api.post("/v1/experiment", {"project_id": project["id"], "name": "e"})
    assert second["id"] != first["id"]


def test_delete_returns_object_with_deleted_at(api: Api, project: dict) -> None:
    deleted = api.delete(f"/v1/project/{project['id']}")
    assert deleted["id"] == project["id"] and deleted["deleted_at"]


def test_deleting_a_project_removes_what_lives_in_it(api: Api) -> None:
    world = World(api)
    pid = world.project["id"]
    exp = api.post("/v1/experiment", {"project_id": pid, "name": "e"})
    view = api.post("/v1/view", world.body("view", "v"))
    snap = api.post("/v1/dataset_snapshot", world.body("dataset_snapshot", "s"))
    api.delete(f"/v1/project/{pid}")
    api.fails(404, "GET", f"/v1/experiment/{exp['id']}")
    api.fails(404, "GET", f"/v1/dataset/{world.dataset['id']}")
    api.fails(404, "GET", f"/v1/dataset_snapshot/{snap['id']}")
    api.fails(404, "GET", f"/v1/view/{view['id']}", params=locator("view", view))


def test_concurrent_creates_of_one_identity_make_one_object(api: Api, sandbox_org: Any) -> None:
    """Each request is one serialisable transaction: racing POSTs cannot duplicate an identity."""
    from concurrent.futures import ThreadPoolExecutor

    def post(i: int) -> str:
        with Api(str(api.client.base_url), sandbox_org.api_key) as client:
            return client.post("/v1/project", {"name": "raced", "description": str(i)})["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(post, range(40)))
    assert len(ids) == 1
    assert [p["id"] for p in api.list("/v1/project", project_name="raced")] == list(ids)


JUNK = {
    "id": "00000000-0000-4000-8000-0000000000aa",
    "org_id": "00000000-0000-4000-8000-0000000000bb",
    "user_id": "00000000-0000-4000-8000-0000000000cc",
    "_object_org_id": "00000000-0000-4000-8000-0000000000dd",
    "created": "2001-01-01T00:00:00Z",
    "deleted_at": "2001-01-01T00:00:00Z",
    "updated_at": "2001-01-01T00:00:00Z",
    "used": "2001-01-01T00:00:00Z",
}


@pytest.mark.parametrize("type_name", CRUD_TYPES)
def test_server_set_fields_in_a_create_body_are_ignored(api: Api, type_name: str) -> None:
    t = TYPES[type_name]
    junk = {field: JUNK.get(field, "junk-value") for field in t.server_set}
    body = {**junk, **World(api).body(type_name, "server-set")}
    created = api.post(t.base, body)
    for field, value in junk.items():
        assert created.get(field) != value, f"{type_name}.{field} was taken from the request"
