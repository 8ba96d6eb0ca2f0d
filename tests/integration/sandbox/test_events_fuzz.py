"""Property-based fuzzing of the event endpoints with the official spec (schemathesis).

Insert / fetch / feedback / summarize and ``POST /v1/insert`` get generated requests,
valid and invalid, with random ids and with the ids of real containers. Checks: no
5xx, every response inside its schema, declared content types.
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
from tests.integration.sandbox.helpers import Api

EVENT_PATHS = r"/(insert|fetch|feedback|summarize)$"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
PLAN = (
    (GenerationMode.POSITIVE, 8, False),
    (GenerationMode.NEGATIVE, 4, False),
    (GenerationMode.POSITIVE, 12, True),
)


@pytest.mark.timeout(120)
def test_event_endpoints_against_the_spec(sandbox_server: Any, sandbox_org: Any) -> None:
    api = Api(sandbox_server.url, sandbox_org.api_key)
    project = api.post("/v1/project", {"name": "fuzz-events"})
    real = {
        "project_id": project["id"],
        "experiment_id": api.post("/v1/experiment", {"project_id": project["id"], "name": "e"})["id"],
        "dataset_id": api.post("/v1/dataset", {"project_id": project["id"], "name": "d"})["id"],
    }
    for param, kind in (
        ("project_id", "project_logs"),
        ("experiment_id", "experiment"),
        ("dataset_id", "dataset"),
    ):
        api.post(f"/v1/{kind}/{real[param]}/insert", {"events": [{"id": "row", "input": 1}]})
    schema = schemathesis.openapi.from_dict(spec.fixed_spec())
    schema.config.update(base_url=sandbox_server.url)
    schema = schema.include(path_regex=EVENT_PATHS).exclude(method="OPTIONS")
    session = requests.Session()
    headers = {"Authorization": f"Bearer {sandbox_org.api_key}"}
    failures: list[str] = []
    calls = 0
    for op in [result.ok() for result in schema.get_all_operations()]:
        param = next((p for p in real if "{" + p + "}" in op.path), None)
        for mode, count, with_real_id in PLAN:
            if with_real_id and param is None:
                continue
            kwargs = {"path_parameters": {param: real[param]}} if with_real_id else {}

            @given(case=op.as_strategy(generation_mode=mode, **kwargs))
            @settings(
                max_examples=count,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
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
    assert calls > 150, f"only {calls} generated requests"
