"""The spec loader: nullable rewriting, patched spec bugs, and routing coverage."""

from __future__ import annotations

import re

from braintrust_migrate.sandbox.core import spec
from braintrust_migrate.sandbox.http.app import route_table
from braintrust_migrate.sandbox.objects.model import TYPES

UUID = "6a3f0c1e-1b2c-4d5e-8f90-123456789abc"
NOT_CRUD = re.compile(r"/(insert|fetch|feedback|summarize|invoke)$|^/v1/(eval|insert|proxy)")


def test_spec_is_vendored_and_converted() -> None:
    raw, fixed = spec.raw_spec(), spec.fixed_spec()
    assert raw["openapi"] == "3.0.3" and fixed["openapi"] == "3.1.0"
    assert len(raw["paths"]) == 69 and len(raw["components"]["schemas"]) == 230
    assert "nullable" not in str(fixed["components"])  # every nullable rewritten


def test_nullable_becomes_type_union_and_anyof() -> None:
    props = spec.fixed_spec()["components"]["schemas"]["Project"]["properties"]
    assert props["description"]["type"] == ["string", "null"]
    assert (
        spec.validate_component("Project", {"id": UUID, "org_id": UUID, "name": "p", "settings": None}) == []
    )
    acl_item = {"object_type": "project", "object_id": UUID, "user_id": None, "permission": None}
    assert spec.validate_component("AclItem", acl_item) == []  # $ref + nullable -> anyOf [ref, null]
    assert spec.validate_component("Project", {"id": UUID, "org_id": UUID, "name": None}) != []


def test_patched_spec_bugs() -> None:
    view = {"id": UUID, "object_type": "project", "object_id": UUID, "view_type": None, "name": "v"}
    assert spec.validate_component("View", view) == []  # enum lists null on a non-nullable string
    assert spec.validate_component("FunctionTypeEnum", None) == []
    settings = spec.fixed_spec()["components"]["schemas"]["TopicMapGenerationSettings"]["properties"]
    assert settings["n_clusters"]["exclusiveMinimum"] == 0  # OAS 3.0 boolean form rewritten


def test_error_messages_name_the_field() -> None:
    errors = spec.validate_component("CreateExperiment", {"project_id": "x", "tags": [1]})
    assert any(e.startswith("project_id:") and "uuid" in e for e in errors)
    assert any(e.startswith("tags[0]:") for e in errors)
    assert spec.validate_component("CreateProject", {}) == ["(root): 'name' is a required property"]


def test_every_crud_operation_of_the_spec_is_routed() -> None:
    routed = {(path, method) for path, methods in route_table().items() for method in methods}
    wanted = {
        (path, method.upper())
        for path, item in spec.fixed_spec()["paths"].items()
        for method in item
        if method != "options" and path != "/v1" and not NOT_CRUD.search(path)
    }
    assert routed == wanted


def test_list_filters_come_from_the_spec() -> None:
    assert "project_id" not in TYPES["span_iframe"].list_params
    assert "dataset_id" not in TYPES["dataset_snapshot"].list_params
    assert "starting_after" not in TYPES["env_var"].list_params
    assert "limit" not in TYPES["environment"].list_params
    assert {"version", "environment", "slug"} <= set(TYPES["prompt"].list_params)
