"""Every migrated object type, described as data: the engine has no per-type code paths
beyond the few hooks named here (skip rules and list scoping)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Scope = Literal["org", "project"]
Update = Literal["put", "patch"]


def _bundled_code(obj: Mapping[str, Any]) -> str | None:
    data = obj.get("function_data") or {}
    if data.get("type") == "code" and (data.get("data") or {}).get("type") == "bundle":
        return "code_bundle_not_migratable"
    return None


def _system_role(obj: Mapping[str, Any]) -> str | None:
    return "system_role" if obj.get("org_id") is None else None


@dataclass(frozen=True)
class ResourceType:
    name: str  # the name users select with --resources
    kind: str  # the object kind references point at
    path: str  # collection path
    scope: Scope
    identity: tuple[str, ...]  # unique key within the scope (project-scoped adds the project)
    fields: tuple[str, ...]  # what is copied from a source object into a create body
    update: Update | None = "put"
    cursor: bool = True  # list pages with starting_after
    org_name_param: bool = True  # list accepts org_name
    list_params: Mapping[str, str] | None = None  # fixed list filters
    skip: Callable[[Mapping[str, Any]], str | None] | None = None
    # Fields PATCH cannot carry; an update through PATCH omits them.
    immutable: tuple[str, ...] = ()
    # Fields the destination requires that translation may have had to drop.
    required: tuple[str, ...] = ()
    # Objects every org already has (by name): merged into, never replaced nor a conflict. Their
    # `merge_fields` are id lists: what the source has is added, nothing the destination has is
    # removed, and no other field is touched (they belong to the destination org).
    builtin_names: frozenset[str] = frozenset()
    merge_fields: tuple[str, ...] = ()

    def body(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The writable part of an object, with absent and null fields left out."""
        return {key: obj[key] for key in self.fields if obj.get(key) is not None}

    def merges(self, dest: Mapping[str, Any] | None) -> bool:
        """Whether the destination object `dest` is a built-in one, merged into."""
        return dest is not None and bool(self.builtin_names) and dest.get("name") in self.builtin_names

    def merge_patch(self, body: Mapping[str, Any], dest: Mapping[str, Any]) -> dict[str, Any]:
        """The PATCH (`add_<field>` deltas) adding what `body` lists and `dest` lacks; empty: nothing."""
        patch: dict[str, Any] = {}
        for name in self.merge_fields:
            have = set(dest.get(name) or ())
            missing = [value for value in dict.fromkeys(body.get(name) or ()) if value not in have]
            if missing:
                patch[f"add_{name}"] = missing
        return patch


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("ai_secrets", "ai_secret", "/v1/ai_secret", "org", ("name",), ("name", "type", "metadata")),
    ResourceType(
        "roles",
        "role",
        "/v1/role",
        "org",
        ("name",),
        ("name", "description", "member_permissions", "member_roles"),
        skip=_system_role,
    ),
    ResourceType(
        "groups",
        "group",
        "/v1/group",
        "org",
        ("name",),
        ("name", "description", "member_users", "member_groups"),
        # Every org starts with these three, holding its own members (PATCH adds with add_member_*).
        builtin_names=frozenset({"Owners", "Engineers", "Viewers"}),
        merge_fields=("member_users", "member_groups"),
    ),
    ResourceType(
        "environments",
        "environment",
        "/environment",
        "org",
        ("slug",),
        ("name", "slug", "description"),
        update="patch",
        cursor=False,
    ),
    ResourceType(
        "org_env_vars",
        "env_var",
        "/v1/env_var",
        "org",
        ("object_type", "object_id", "name"),
        ("object_type", "object_id", "name", "metadata", "secret_type"),
        update="patch",
        cursor=False,
        org_name_param=False,
        list_params={"object_type": "organization"},
        immutable=("object_type", "object_id"),
    ),
    ResourceType(
        "projects", "project", "/v1/project", "org", ("name",), ("name", "description"), update="patch"
    ),
    ResourceType(
        "datasets",
        "dataset",
        "/v1/dataset",
        "project",
        ("name",),
        ("project_id", "name", "description", "tags", "metadata"),
        update="patch",
        immutable=("project_id",),
    ),
    ResourceType(
        "project_tags",
        "project_tag",
        "/v1/project_tag",
        "project",
        ("name",),
        ("project_id", "name", "description", "color"),
    ),
    ResourceType(
        "span_iframes",
        "span_iframe",
        "/v1/span_iframe",
        "project",
        ("name",),
        ("project_id", "name", "url", "description", "post_message"),
    ),
    ResourceType(
        "mcp_servers",
        "mcp_server",
        "/v1/mcp_server",
        "project",
        ("name",),
        ("project_id", "name", "url", "description"),
    ),
    ResourceType(
        "functions",
        "function",
        "/v1/function",
        "project",
        ("slug",),
        (
            "project_id",
            "name",
            "slug",
            "description",
            "prompt_data",
            "tags",
            "function_type",
            "function_data",
            "origin",
            "function_schema",
        ),
        skip=_bundled_code,
    ),
    ResourceType(
        "prompts",
        "prompt",
        "/v1/prompt",
        "project",
        ("slug",),
        ("project_id", "name", "slug", "description", "prompt_data", "tags", "function_type"),
    ),
    ResourceType(
        "project_scores",
        "project_score",
        "/v1/project_score",
        "project",
        ("name",),
        ("project_id", "name", "score_type", "description", "categories", "config"),
    ),
    ResourceType(
        "project_automations",
        "project_automation",
        "/v1/project_automation",
        "project",
        ("name",),
        ("project_id", "name", "description", "config"),
    ),
    ResourceType(
        "experiments",
        "experiment",
        "/v1/experiment",
        "project",
        ("name",),
        (
            "project_id",
            "name",
            "description",
            "repo_info",
            "base_exp_id",
            "dataset_id",
            "dataset_version",
            "internal_metadata",
            "parameters_id",
            "parameters_version",
            "public",
            "metadata",
            "tags",
        ),
        update="patch",
        immutable=("project_id",),
    ),
    ResourceType(
        "views",
        "view",
        "/v1/view",
        "project",
        ("object_type", "object_id", "name"),
        ("object_type", "object_id", "view_type", "name", "view_data", "options", "user_id"),
        org_name_param=False,
    ),
    ResourceType(
        "dataset_snapshots",
        "dataset_snapshot",
        "/v1/dataset_snapshot",
        "project",
        ("dataset_id", "name"),
        ("dataset_id", "name", "description", "xact_id"),
        required=("xact_id",),
    ),
    ResourceType(
        "env_vars",
        "env_var",
        "/v1/env_var",
        "project",
        ("object_type", "object_id", "name"),
        ("object_type", "object_id", "name", "metadata", "secret_type"),
        update="patch",
        cursor=False,
        org_name_param=False,
        immutable=("object_type", "object_id"),
    ),
)

BY_NAME: dict[str, ResourceType] = {rt.name: rt for rt in RESOURCE_TYPES}

# Kinds whose objects can own views and env vars (object_type value -> kind).
VIEW_OBJECT_TYPES: Mapping[str, str] = {
    "project": "project",
    "experiment": "experiment",
    "dataset": "dataset",
}
ENV_VAR_OBJECT_TYPES: Mapping[str, str] = {
    "organization": "organization",
    "project": "project",
    "function": "function",
}

# Prompts and functions share one id space: a tool reference of type "function" may name a prompt.
SHARED_ID_KINDS: Mapping[str, tuple[str, ...]] = {
    "function": ("function", "prompt"),
    "prompt": ("prompt", "function"),
}
