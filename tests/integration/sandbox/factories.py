"""Minimal valid create bodies for every object type, for generic CRUD tests."""

from __future__ import annotations

from typing import Any

from tests.integration.sandbox.helpers import Api

PROMPT_DATA = {
    "prompt": {"type": "chat", "messages": [{"role": "system", "content": "You are helpful."}]},
    "options": {"model": "gpt-4o-mini", "params": {"temperature": 0.2}},
}
CODE = {
    "type": "code",
    "data": {
        "type": "inline",
        "runtime_context": {"runtime": "python", "version": "3.12"},
        "code": "def f(): pass",
    },
}
AUTOMATION_CONFIG = {
    "event_type": "logs",
    "btql_filter": "metadata.env = 'prod'",
    "interval_seconds": 3600,
    "action": {"type": "webhook", "url": "https://hooks.example.com/x"},
}


class World:
    """Lazily created parents (project, dataset, service account) within one org."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._project: dict[str, Any] | None = None
        self._dataset: dict[str, Any] | None = None
        self._service_account: str | None = None

    @property
    def project(self) -> dict[str, Any]:
        if self._project is None:
            self._project = self.api.post("/v1/project", {"name": "factory-project"})
        return self._project

    @property
    def dataset(self) -> dict[str, Any]:
        if self._dataset is None:
            self._dataset = self.api.post(
                "/v1/dataset", {"project_id": self.project["id"], "name": "factory-ds"}
            )
        return self._dataset

    @property
    def service_account(self) -> str:
        if self._service_account is None:
            out = self.api.patch(
                "/v1/organization/members", {"invite_users": {"service_accounts": [{"name": "factory-bot"}]}}
            )
            self._service_account = out["added_users"][0]["id"]
        return self._service_account

    def user_id(self) -> str:
        return self.api.list("/v1/user")[0]["id"]

    def body(self, type_name: str, name: str, variant: int = 0) -> dict[str, Any]:
        """A create body for ``type_name``; ``variant`` changes non-identity fields."""
        pid = self.project["id"] if type_name not in _ORG_LEVEL else None
        v = variant
        bodies: dict[str, Any] = {
            "project": lambda: {"name": name, "description": f"d{v}"},
            "experiment": lambda: {
                "project_id": pid,
                "name": name,
                "description": f"d{v}",
                "tags": [f"t{v}"],
            },
            "dataset": lambda: {
                "project_id": pid,
                "name": name,
                "description": f"d{v}",
                "metadata": {"v": v},
            },
            "prompt": lambda: {
                "project_id": pid,
                "name": name,
                "slug": name,
                "description": f"d{v}",
                "prompt_data": PROMPT_DATA,
            },
            "function": lambda: {
                "project_id": pid,
                "name": name,
                "slug": name,
                "description": f"d{v}",
                "function_data": CODE,
            },
            "role": lambda: {
                "name": name,
                "description": f"d{v}",
                "member_permissions": [{"permission": "read"}],
            },
            "group": lambda: {"name": name, "description": f"d{v}"},
            "project_automation": lambda: {
                "project_id": pid,
                "name": name,
                "description": f"d{v}",
                "config": AUTOMATION_CONFIG,
            },
            "project_score": lambda: {
                "project_id": pid,
                "name": name,
                "description": f"d{v}",
                "score_type": "slider",
            },
            "project_tag": lambda: {
                "project_id": pid,
                "name": name,
                "description": f"d{v}",
                "color": "#ff0000",
            },
            "span_iframe": lambda: {
                "project_id": pid,
                "name": name,
                "description": f"d{v}",
                "url": "https://x.example.com",
            },
            "view": lambda: {
                "object_type": "project",
                "object_id": pid,
                "view_type": "experiments",
                "name": name,
                "view_data": {"search": {"filter": [f"f{v}"]}},
            },
            "api_key": lambda: {"name": name},
            "service_token": lambda: {"name": name, "service_account_id": self.service_account},
            "ai_secret": lambda: {
                "name": name,
                "type": "openai",
                "metadata": {"v": v},
                "secret": f"sk-secret-value-{v}",
            },
            "env_var": lambda: {
                "object_type": "project",
                "object_id": pid,
                "name": name,
                "value": f"value-{v}",
                "metadata": {"v": v},
            },
            "mcp_server": lambda: {
                "project_id": pid,
                "name": name,
                "description": f"d{v}",
                "url": "https://mcp.example.com",
            },
            "dataset_snapshot": lambda: {
                "dataset_id": self.dataset["id"],
                "name": name,
                "description": f"d{v}",
                "xact_id": "1000192656880881099",
            },
            "environment": lambda: {"name": name, "slug": name, "description": f"d{v}"},
        }
        return bodies[type_name]()


_ORG_LEVEL = {
    "project",
    "role",
    "group",
    "api_key",
    "service_token",
    "ai_secret",
    "environment",
    "dataset_snapshot",
}

# Types with the generic create/list/get/delete shape (acl, user and organization are tested apart).
CRUD_TYPES = [
    "project",
    "experiment",
    "dataset",
    "prompt",
    "function",
    "role",
    "group",
    "project_automation",
    "project_score",
    "project_tag",
    "span_iframe",
    "view",
    "api_key",
    "service_token",
    "ai_secret",
    "env_var",
    "mcp_server",
    "dataset_snapshot",
    "environment",
]
