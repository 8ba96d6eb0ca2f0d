"""Every migrated object type and every event stream, described as data.

The engine walks these rows and decides nothing by type name: where an object belongs, how it
is listed, when it is written, what it may not carry, all of it is a column here. References
between objects are the other table, `refs.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Scope = Literal["org", "project"]
Update = Literal["put", "patch"]
# When a type's objects are written; the order of phases is derived from references (engine/steps.py).
Phase = Literal["objects", "settings", "grants", "after_rows"]
# The object is its own project (the owner field of the project type).
SELF = "id"


def _bundled_code(obj: Mapping[str, Any]) -> str | None:
    data = obj.get("function_data") or {}
    if data.get("type") == "code" and (data.get("data") or {}).get("type") == "bundle":
        return "code_bundle_not_migratable"
    return None


def _org_less(obj: Mapping[str, Any]) -> bool:
    return obj.get("org_id") is None


def _acl_name(acl: Mapping[str, Any]) -> str:
    who = f"user:{acl['user_id']}" if acl.get("user_id") else f"group:{acl.get('group_id')}"
    grant = acl.get("permission") or f"role:{acl.get('role_id')}"
    return f"{acl.get('object_type')}:{acl.get('object_id')} {who} {grant}"


@dataclass(frozen=True)
class Secret:
    """A value the API takes on write and never returns: it comes from the secrets file."""

    field: str  # the body field that carries the value
    section: str  # the secrets file's section
    missing: str  # the outcome reason when the file has no value


@dataclass(frozen=True)
class Batch:
    """Creation through one request for many objects."""

    path: str
    field: str  # the request's list of bodies
    result: str  # the response's list of created objects
    size: int


@dataclass(frozen=True, eq=False)  # one object per row: compared and hashed by identity
class ResourceType:
    name: str  # the name users select with --resources
    kind: str  # the object kind references point at
    path: str  # collection path
    scope: Scope
    identity: tuple[str, ...]  # unique key within the scope (the owner field is added when absent)
    fields: tuple[str, ...]  # what is copied from a source object into a create body
    update: Update | None = "put"  # None: the identity is the whole content, nothing to update
    cursor: bool = True  # list pages with starting_after
    org_name_param: bool = True  # list accepts org_name
    list_params: Mapping[str, str] | None = None  # fixed list filters
    list_path: str | None = None  # when listing is not GET `path`
    # Listed per owner object (object_type + object_id), not org-wide.
    per_owner: bool = False
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
    # The field holding the id of the object this one belongs to (None: the org). Its target kind
    # comes from the reference table; SELF marks the project type itself.
    owner: str | None = None
    # For a polymorphic owner: the object_type values this type admits.
    owner_types: frozenset[str] = frozenset()
    phase: Phase = "objects"
    # A part of another object (same source id), written into it by PATCH: never created.
    facet_of: str | None = None
    windowed: bool = False  # --created-after/--before select these objects themselves
    always_listed: bool = False  # read from the source whatever the selection (ids resolve through it)
    org_name_body: bool = False  # creates take org_name (keys that see several orgs)
    versioned: bool = False  # writes give a new _xact_id that pins elsewhere translate to
    secret: Secret | None = None
    # Objects the platform defines for every org (no org_id): matched by name, never copied.
    system: Callable[[Mapping[str, Any]], bool] | None = None
    cycle_rank: int = 9  # inside a reference cycle, lower ranks are written first
    batch: Batch | None = None
    label: str | None = None  # how logs name one object of this type
    name_of: Callable[[Mapping[str, Any]], str] | None = None

    def body(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The writable part of an object, with absent and null fields left out."""
        return {key: obj[key] for key in self.fields if obj.get(key) is not None}

    def display_name(self, obj: Mapping[str, Any]) -> str:
        """How reports and logs name an object of this type."""
        if self.name_of is not None:
            return self.name_of(obj)
        return str(obj.get("name") or obj.get("slug") or obj["id"])

    def admits(self, obj: Mapping[str, Any]) -> bool:
        """Whether a listed object of this kind is one of this type's (its owner type)."""
        return not self.owner_types or obj.get("object_type") in self.owner_types

    def is_system(self, obj: Mapping[str, Any]) -> bool:
        return self.system is not None and self.system(obj)

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

    @property
    def in_project(self) -> bool:
        """Whether each object lives inside one project (and its project's steps)."""
        return self.scope == "project"

    @property
    def listing_path(self) -> str:
        return self.list_path or self.path


def _project_type(
    name: str, kind: str, identity: tuple[str, ...], fields: tuple[str, ...], **kw: Any
) -> ResourceType:
    return ResourceType(name, kind, f"/v1/{kind}", "project", identity, fields, owner="project_id", **kw)


def _env_var_type(name: str, scope: Scope, owner_types: set[str], **kw: Any) -> ResourceType:
    """Env vars of one scope: one endpoint, told apart by the type of the object they belong to."""
    return ResourceType(
        name,
        "env_var",
        "/v1/env_var",
        scope,
        ("object_type", "object_id", "name"),
        ("object_type", "object_id", "name", "metadata", "secret_type"),
        update="patch",
        cursor=False,
        org_name_param=False,
        immutable=("object_type", "object_id"),
        owner="object_id",
        owner_types=frozenset(owner_types),
        secret=Secret("value", "env_vars", "env_var_needs_value"),
        label="env var",
        **kw,
    )


ACL_FIELDS = (
    "object_type",
    "object_id",
    "user_id",
    "group_id",
    "permission",
    "restrict_object_type",
    "role_id",
)

RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "ai_secrets",
        "ai_secret",
        "/v1/ai_secret",
        "org",
        ("name",),
        ("name", "type", "metadata"),
        org_name_body=True,
        secret=Secret("secret", "ai_secrets", "secret_needs_value"),
        label="AI secret",
    ),
    ResourceType(
        "roles",
        "role",
        "/v1/role",
        "org",
        ("name",),
        ("name", "description", "member_permissions", "member_roles"),
        skip=lambda obj: "system_role" if _org_less(obj) else None,
        system=_org_less,
        always_listed=True,
        org_name_body=True,
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
        org_name_body=True,
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
        org_name_body=True,
    ),
    _env_var_type("org_env_vars", "org", {"organization"}, list_params={"object_type": "organization"}),
    ResourceType(
        "projects",
        "project",
        "/v1/project",
        "org",
        ("name",),
        ("name", "description"),
        update="patch",
        owner=SELF,
        always_listed=True,
        org_name_body=True,
    ),
    # Settings point at objects created later: PATCHed into the project once those exist.
    ResourceType(
        "project_settings",
        "project_settings",
        "/v1/project",
        "org",
        ("name",),
        ("settings",),
        update="patch",
        phase="settings",
        facet_of="project",
        owner=SELF,
    ),
    _project_type(
        "datasets",
        "dataset",
        ("name",),
        ("project_id", "name", "description", "tags", "metadata"),
        update="patch",
        immutable=("project_id",),
    ),
    _project_type("project_tags", "project_tag", ("name",), ("project_id", "name", "description", "color")),
    _project_type(
        "span_iframes", "span_iframe", ("name",), ("project_id", "name", "url", "description", "post_message")
    ),
    _project_type(
        "mcp_servers",
        "mcp_server",
        ("name",),
        ("project_id", "name", "url", "description"),
        label="MCP server",
    ),
    _project_type(
        "functions",
        "function",
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
        versioned=True,
        cycle_rank=0,
    ),
    _project_type(
        "prompts",
        "prompt",
        ("slug",),
        ("project_id", "name", "slug", "description", "prompt_data", "tags", "function_type"),
        versioned=True,
        cycle_rank=1,
    ),
    _project_type(
        "project_scores",
        "project_score",
        ("name",),
        ("project_id", "name", "score_type", "description", "categories", "config"),
    ),
    _project_type(
        "project_automations",
        "project_automation",
        ("name",),
        ("project_id", "name", "description", "config"),
    ),
    _project_type(
        "experiments",
        "experiment",
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
        windowed=True,
    ),
    ResourceType(
        "views",
        "view",
        "/v1/view",
        "project",
        ("object_type", "object_id", "name"),
        ("object_type", "object_id", "view_type", "name", "view_data", "options", "user_id"),
        org_name_param=False,
        per_owner=True,
        owner="object_id",
        owner_types=frozenset({"project", "experiment", "dataset"}),
    ),
    # Pinned to a dataset version that exists once the dataset's rows are copied.
    ResourceType(
        "dataset_snapshots",
        "dataset_snapshot",
        "/v1/dataset_snapshot",
        "project",
        ("dataset_id", "name"),
        ("dataset_id", "name", "description", "xact_id"),
        required=("xact_id",),
        owner="dataset_id",
        phase="after_rows",
    ),
    _env_var_type("env_vars", "project", {"project", "function"}),
    # Identified by their whole content; created in batches once every object they name exists.
    ResourceType(
        "acls",
        "acl",
        "/v1/acl",
        "org",
        ACL_FIELDS,
        ACL_FIELDS,
        update=None,
        list_path="/v1/acl/list_org",
        phase="grants",
        batch=Batch("/v1/acl/batch_update", "add_acls", "added_acls", 100),
        label="ACL",
        name_of=_acl_name,
    ),
)

BY_NAME: dict[str, ResourceType] = {rt.name: rt for rt in RESOURCE_TYPES}
# The first type of a kind is the one ids of that kind are looked up through.
BY_KIND: dict[str, ResourceType] = {}
for _rt in RESOURCE_TYPES:
    BY_KIND.setdefault(_rt.kind, _rt)
PROJECT_TYPE = next(rt for rt in RESOURCE_TYPES if rt.owner == SELF and rt.facet_of is None)
# Verify compares ACLs with a parity of its own (grants, not objects).
ACL_TYPE = next(rt for rt in RESOURCE_TYPES if rt.identity == ACL_FIELDS)
# What users select: every type but facets, which go with the type they are part of.
SELECTABLE: tuple[ResourceType, ...] = tuple(rt for rt in RESOURCE_TYPES if rt.facet_of is None)

# Prompts and functions share one id space: a tool reference of type "function" may name a prompt.
SHARED_ID_KINDS: Mapping[str, tuple[str, ...]] = {
    "function": ("function", "prompt"),
    "prompt": ("prompt", "function"),
}


@dataclass(frozen=True)
class EventStream:
    """One kind of event container: its rows are read through BTQL and written by insert."""

    kind: str  # the container's BTQL / API object type (and the stream's one internal name)
    selected_as: str  # the --resources name
    container: str  # the kind of the object that holds the rows
    report_type: str  # the row type in reports
    label: str  # how logs and progress name these rows
    kept: tuple[str, ...]  # the fields an insert carries
    owner_field: str  # the row field naming its container (rows of a shared read are told apart by it)


_LOG_FIELDS = (
    "id", "created", "span_id", "root_span_id", "span_parents", "input", "output", "expected", "error",
    "scores", "metadata", "metrics", "context", "span_attributes", "tags", "facets", "origin",
)  # fmt: skip

_DATASET_FIELDS = (
    "id", "created", "span_id", "root_span_id", "span_parents", "input", "expected", "metadata", "tags", "facets",
    "origin",
)  # fmt: skip

EVENT_STREAMS: tuple[EventStream, ...] = (
    # The dataset insert schema has no outputs or scores.
    EventStream(
        "dataset",
        "datasets",
        "dataset",
        "dataset_rows",
        "dataset",
        _DATASET_FIELDS,
        "dataset_id",
    ),
    EventStream(
        "experiment",
        "experiments",
        "experiment",
        "experiment_rows",
        "experiment",
        _LOG_FIELDS,
        "experiment_id",
    ),
    EventStream("project_logs", "logs", "project", "logs", "logs", _LOG_FIELDS, "project_id"),
)
STREAMS: dict[str, EventStream] = {s.kind: s for s in EVENT_STREAMS}
# Selectable names that are not object types.
STREAM_SELECTIONS: tuple[str, ...] = tuple(
    s.selected_as for s in EVENT_STREAMS if s.selected_as not in BY_NAME
)
