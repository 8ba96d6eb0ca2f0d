"""Property-based fuzzing of the object endpoints with the official spec (schemathesis 4.x).

Every CRUD operation (not the event, eval, invoke or proxy endpoints) gets a bounded
number of generated requests, valid and invalid, first with random ids and then
against real objects. Checks: no 5xx, responses inside their schema, declared
content types. Undeclared status codes are not checked: the spec declares no 404
anywhere, and the sandbox answers unknown ids with 404.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from braintrust_migrate.sandbox.core import spec
from braintrust_migrate.sandbox.objects.model import TYPES
from tests.integration.sandbox.factories import CRUD_TYPES, World
from tests.integration.sandbox.helpers import Api

NOT_CRUD = r"/(insert|fetch|feedback|summarize|invoke)$|^/v1/(eval|insert|proxy)"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
PLAN = (
    (GenerationMode.POSITIVE, 10, False),
    (GenerationMode.NEGATIVE, 6, False),
    (GenerationMode.POSITIVE, 6, True),  # with the path id of a real object
)


def _real_objects(api: Api) -> dict[str, dict[str, Any]]:
    world = World(api)
    out = {name: api.post(TYPES[name].base, world.body(name, f"fuzz-{name}")) for name in CRUD_TYPES}
    out["acl"] = api.post(
        "/v1/acl",
        {
            "object_type": "project",
            "object_id": world.project["id"],
            "user_id": world.user_id(),
            "permission": "read",
        },
    )
    out["user"] = {"id": world.user_id()}
    out["organization"] = api.list("/v1/organization")[0]
    return out


def _type_of(path: str) -> str | None:
    for t in TYPES.values():
        if path == t.item_path:
            return t.name
    return None


@pytest.mark.timeout(600)  # a hang guard only: about 40 s on a quiet machine, minutes under load
def test_object_endpoints_against_the_spec(sandbox_server: Any, sandbox_org: Any) -> None:
    api = Api(sandbox_server.url, sandbox_org.api_key)
    real = _real_objects(api)
    schema = schemathesis.openapi.from_dict(spec.fixed_spec())
    schema.config.update(base_url=sandbox_server.url)
    schema = schema.exclude(path_regex=NOT_CRUD).exclude(method="OPTIONS").exclude(path="/v1")
    session = requests.Session()
    headers = {"Authorization": f"Bearer {sandbox_org.api_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: op.method.upper() == "DELETE")  # real objects die last
    failures: list[str] = []
    calls = 0

    for op in operations:
        type_name = _type_of(op.path)
        for mode, count, with_real_id in PLAN:
            kwargs: dict[str, Any] = {}
            if with_real_id:
                if type_name not in real:
                    continue
                obj = real[type_name]
                kwargs["path_parameters"] = {TYPES[type_name].id_param: obj["id"]}
                if type_name == "view" and op.method.upper() == "GET":
                    kwargs["query"] = {"object_type": obj["object_type"], "object_id": obj["object_id"]}

            @given(case=op.as_strategy(generation_mode=mode, **kwargs))
            @settings(
                max_examples=count,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(session=session, headers=headers, checks=CHECKS)

            try:
                run()
            except Exception as exc:  # collect every operation's failure, then report them all
                if "Unable to satisfy assumptions" not in str(exc):
                    failures.append(f"{op.label} [{mode.value}{', real id' if with_real_id else ''}]: {exc}")
    api.close()
    assert not failures, "\n\n".join(failures)
    assert calls > 500, f"only {calls} generated requests"
