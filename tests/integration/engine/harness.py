"""Running migrations against sandbox orgs, and listing their objects over HTTP (the
fidelity judgement itself is the independent oracle's: tests/oracle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from braintrust_migrate.config import Settings, load_settings
from braintrust_migrate.engine.context import Options
from braintrust_migrate.engine.resources import BY_NAME, RESOURCE_TYPES
from braintrust_migrate.engine.runner import Runner, RunResult
from braintrust_migrate.engine.secrets_file import Secrets
from braintrust_migrate.engine.state import StateStore, pair_folder
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.seed.run import seed_org


def settings_for(
    url: str, source: SandboxOrg, dest: SandboxOrg, state_dir: Path, **overrides: Any
) -> Settings:
    values = {
        "bt_source_url": url,
        "bt_dest_url": url,
        "bt_source_api_key": source.api_key,
        "bt_dest_api_key": dest.api_key,
        "migration_state_dir": state_dir,
        "migration_retry_delay": 0.01,
        **overrides,
    }
    return load_settings(values, env_file=None)


async def migrate(
    url: str,
    source: SandboxOrg,
    dest: SandboxOrg,
    state_dir: Path,
    *,
    secrets: Secrets | None = None,
    **kw: Any,
) -> RunResult:
    option_names = set(Options.__dataclass_fields__)
    options = Options(**{k: v for k, v in kw.items() if k in option_names})
    settings = settings_for(
        url, source, dest, state_dir, **{k: v for k, v in kw.items() if k not in option_names}
    )
    return await Runner(settings, options, secrets or Secrets()).run()


async def seed(url: str, org: SandboxOrg, profile: str = "small", seed_value: int = 0) -> None:
    await seed_org(url, org.api_key, profile=profile, seed=seed_value)


def state_store(state_dir: Path, source: SandboxOrg, dest: SandboxOrg) -> StateStore:
    return StateStore(pair_folder(state_dir, source.id, dest.id) / "state.db")


def list_all(
    url: str, org: SandboxOrg, path: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {org.api_key}"}
    out: list[dict[str, Any]] = []
    after = None
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        while True:
            query = dict(params or {})
            cursorless = path in ("/v1/env_var", "/environment")
            if not cursorless:
                query.update(limit=200, **({"starting_after": after} if after else {}))
            body = client.get(path, params=query).raise_for_status().json()
            page = body if isinstance(body, list) else body["objects"]
            out.extend(page)
            if cursorless or len(page) < 200:
                return out
            after = page[-1]["id"]


def snapshot(url: str, org: SandboxOrg) -> dict[str, list[dict[str, Any]]]:
    """Every object of the org, per resource type (views per project/experiment/dataset)."""
    data: dict[str, list[dict[str, Any]]] = {}
    for rt in RESOURCE_TYPES:
        if rt.name in ("views", "org_env_vars", "acls", "project_settings"):
            continue
        data[rt.name] = list_all(url, org, rt.path)
    data["org_env_vars"] = [e for e in data["env_vars"] if e["object_type"] == "organization"]
    data["env_vars"] = [e for e in data["env_vars"] if e["object_type"] != "organization"]
    views: list[dict[str, Any]] = []
    for object_type, name in (
        ("project", "projects"),
        ("experiment", "experiments"),
        ("dataset", "datasets"),
    ):
        for obj in data[name]:
            views += list_all(url, org, "/v1/view", {"object_type": object_type, "object_id": obj["id"]})
    data["views"] = views
    data["acls"] = list_all(url, org, "/v1/acl/list_org")
    return data


__all__ = ["BY_NAME"]
