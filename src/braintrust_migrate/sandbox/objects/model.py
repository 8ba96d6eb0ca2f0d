"""The Braintrust object types, as data.

One :class:`ObjectType` per type says where it lives, which spec schemas describe
it, how "POST returns the existing object unmodified" finds the existing object
(its identity), how the server infers the owning org, and which body fields
reference other objects (checked for org isolation). Which endpoints exist and
which list filters each list accepts are read from the spec itself, so they are
exactly what the spec lists; :data:`FILTERS` gives every spec list parameter its
meaning, and importing this module fails loudly if the spec gains one we do not
understand.

Identity decisions (braintrust-api.md §1.2; "decided" = the spec text is silent):

=================== ======================================================
project             name, in the org
experiment          (project_id, name)
dataset             (project_id, name)
prompt / function   (project_id, slug)
role / group        name, in the org (system roles are not "in" the org)
acl                 every AclItem field
project_automation  (project_id, name) -- decided: the text says only "same
                    name", but automations live in a project like the others
project_score/tag   (project_id, name)
span_iframe         (project_id, name) -- decided, same reasoning
mcp_server          (project_id, name) -- ``MCPServer.name`` says so
view                (object_type, object_id, name) -- decided
ai_secret           name, in the org
env_var             (object_type, object_id, name) -- decided
dataset_snapshot    (dataset_id, name) -- decided
environment         slug, in the org; the spec only says "Create a new
                    environment" and that the slug is unique, so a duplicate
                    slug is refused (400), not returned
service_token       POST never dedupes; PUT replaces by name (the spec's two
                    texts disagree; each endpoint follows its own text)
api_key             none ("There is no de-duplication")
=================== ======================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from braintrust_migrate.sandbox.core import spec
from braintrust_migrate.sandbox.core.references import (
    FUNCTION_LIKE,
    OBJECT_ID_TARGETS,
    REFERENCES,
    Ref,
    body_refs,
)

__all__ = ["FUNCTION_LIKE", "OBJECT_ID_TARGETS", "Ref"]  # re-exported: the reference table owns them

Scope = Literal["org", "project", "object", "dataset", "self", "global"]


@dataclass(frozen=True)
class Filter:
    """Meaning of one list query parameter."""

    kind: Literal["paging", "org", "eq", "in", "project_name", "version", "environment"]
    field: str | None = None


# Every list query parameter in the spec, by name. Per-endpoint sets come from the spec.
FILTERS: dict[str, Filter] = {
    "limit": Filter("paging"),
    "starting_after": Filter("paging"),
    "ending_before": Filter("paging"),
    "ids": Filter("paging"),
    "org_name": Filter("org"),
    "project_name": Filter("project_name"),
    "project_id": Filter("eq", "project_id"),
    "slug": Filter("eq", "slug"),
    "version": Filter("version"),
    "environment": Filter("environment"),
    "score_type": Filter("in", "score_type"),
    "ai_secret_type": Filter("in", "type"),
    "view_type": Filter("eq", "view_type"),
    "object_type": Filter("eq", "object_type"),
    "object_id": Filter("eq", "object_id"),
    "user_id": Filter("eq", "user_id"),
    "group_id": Filter("eq", "group_id"),
    "permission": Filter("eq", "permission"),
    "restrict_object_type": Filter("eq", "restrict_object_type"),
    "role_id": Filter("eq", "role_id"),
    "given_name": Filter("in", "given_name"),
    "family_name": Filter("in", "family_name"),
    "email": Filter("in", "email"),
    "name": Filter("eq", "name"),
}
# "<type>_name" parameters filter on the object's own name.
for _name in (
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
):
    FILTERS[f"{_name}_name"] = Filter("eq", "name")


@dataclass(frozen=True)
class ObjectType:
    name: str
    base: str  # collection path as in the spec, e.g. "/v1/project"
    schema: str  # response component schema
    scope: Scope  # how the owning org is found
    identity: tuple[str, ...] = ()  # "POST returns existing" key (within the org)
    put_identity: tuple[str, ...] | None = None  # when PUT matches differently from POST
    secret_field: str | None = None  # write-only field, stored apart, never returned
    versioned: bool = False  # has _xact_id versions (prompt, function)
    include_global: bool = False  # lists also show org_id NULL rows (system roles)
    create_output: str | None = None  # response schema of create when it differs
    # Fields of the create body that steer the request and are not stored.
    control_fields: tuple[str, ...] = ("org_name",)

    @property
    def refs(self) -> tuple[Ref, ...]:
        """Body fields holding ids of other objects: this type's rows of the reference table."""
        return body_refs(self.name)

    @property
    def item_path(self) -> str:
        return f"{self.base}/{{{self.id_param}}}"

    @cached_property
    def id_param(self) -> str:
        for path in spec.fixed_spec()["paths"]:
            if path.startswith(self.base + "/{") and path.count("/") == self.base.count("/") + 1:
                return path[len(self.base) + 2 : -1]
        return f"{self.name}_id"

    def has(self, op: Literal["list", "create", "put", "get", "patch", "delete"]) -> bool:
        """Whether the spec defines this operation for the type."""
        paths = spec.fixed_spec()["paths"]
        if op in ("list", "create", "put"):
            method = {"list": "get", "create": "post", "put": "put"}[op]
            return method in paths.get(self.base, {})
        return op in {"get": "get", "patch": "patch", "delete": "delete"} and op in paths.get(
            self.item_path, {}
        )

    @cached_property
    def list_params(self) -> dict[str, Filter]:
        return {p["name"]: FILTERS[p["name"]] for p in spec.parameters(self.base, "get")}

    @cached_property
    def settable(self) -> tuple[str, ...]:
        """Fields the create body may set (everything the create schema declares, minus control fields)."""
        if not self.has("create"):
            return ()
        pointer = spec.request_body_pointer(self.base, "post")
        props = spec.resolve(pointer) if pointer else {}
        if "$ref" in props:
            props = spec.resolve(props["$ref"])
        names = tuple(props.get("properties", {}))
        return tuple(n for n in names if n not in self.control_fields and n != self.secret_field)

    @cached_property
    def server_set(self) -> tuple[str, ...]:
        """Response fields no request body sets: the server fills them (id, created, org_id, ...)."""
        writable = set(self.settable)
        ops: tuple[Literal["patch", "put"], ...] = ("patch", "put")
        for op in ops:
            if self.has(op):
                path = self.item_path if op == "patch" else self.base
                pointer = spec.request_body_pointer(path, op) or ""
                schema = spec.resolve(pointer) if pointer else {}
                schema = spec.resolve(schema["$ref"]) if "$ref" in schema else schema
                writable |= set(schema.get("properties", {}))
        return tuple(p for p in spec.schema_properties(self.schema) if p not in writable)


TYPES: dict[str, ObjectType] = {
    t.name: t
    for t in (
        ObjectType(
            "project",
            "/v1/project",
            "Project",
            "org",
            identity=("name",),
        ),
        ObjectType(
            "experiment",
            "/v1/experiment",
            "Experiment",
            "project",
            identity=("project_id", "name"),
            control_fields=("ensure_new",),
        ),
        ObjectType("dataset", "/v1/dataset", "Dataset", "project", identity=("project_id", "name")),
        ObjectType(
            "prompt",
            "/v1/prompt",
            "Prompt",
            "project",
            identity=("project_id", "slug"),
            versioned=True,
        ),
        ObjectType(
            "function",
            "/v1/function",
            "Function",
            "project",
            identity=("project_id", "slug"),
            versioned=True,
        ),
        ObjectType(
            "role",
            "/v1/role",
            "Role",
            "org",
            identity=("name",),
            include_global=True,
        ),
        ObjectType(
            "group",
            "/v1/group",
            "Group",
            "org",
            identity=("name",),
        ),
        ObjectType(
            "acl",
            "/v1/acl",
            "Acl",
            "object",
            identity=(
                "object_type",
                "object_id",
                "user_id",
                "group_id",
                "permission",
                "restrict_object_type",
                "role_id",
            ),
        ),
        ObjectType("user", "/v1/user", "User", "global"),
        ObjectType("organization", "/v1/organization", "Organization", "self", identity=("name",)),
        ObjectType(
            "project_automation",
            "/v1/project_automation",
            "ProjectAutomation",
            "project",
            identity=("project_id", "name"),
        ),
        ObjectType(
            "project_score",
            "/v1/project_score",
            "ProjectScore",
            "project",
            identity=("project_id", "name"),
        ),
        ObjectType(
            "project_tag", "/v1/project_tag", "ProjectTag", "project", identity=("project_id", "name")
        ),
        ObjectType(
            "span_iframe", "/v1/span_iframe", "SpanIFrame", "project", identity=("project_id", "name")
        ),
        ObjectType(
            "view",
            "/v1/view",
            "View",
            "object",
            identity=("object_type", "object_id", "name"),
        ),
        ObjectType("api_key", "/v1/api_key", "ApiKey", "org", create_output="CreateApiKeyOutput"),
        ObjectType(
            "service_token",
            "/v1/service_token",
            "ServiceToken",
            "org",
            put_identity=("name",),
            create_output="CreateServiceTokenOutput",
        ),
        ObjectType(
            "ai_secret", "/v1/ai_secret", "AISecret", "org", identity=("name",), secret_field="secret"
        ),
        ObjectType(
            "env_var",
            "/v1/env_var",
            "EnvVar",
            "object",
            identity=("object_type", "object_id", "name"),
            secret_field="value",
        ),
        ObjectType("mcp_server", "/v1/mcp_server", "MCPServer", "project", identity=("project_id", "name")),
        ObjectType(
            "dataset_snapshot",
            "/v1/dataset_snapshot",
            "DatasetSnapshot",
            "dataset",
            identity=("dataset_id", "name"),
        ),
        ObjectType("environment", "/environment", "Environment", "org", identity=("slug",)),
    )
}

# Where the owning org comes from for anchored types: (body field, target types).
ANCHORS: dict[Scope, tuple[str, tuple[str, ...]]] = {
    "project": ("project_id", ("project",)),
    "dataset": ("dataset_id", ("dataset",)),
}

# Types soft-deleted along with their parent: (child type, body field naming the parent).
CASCADES: dict[str, tuple[tuple[str, str], ...]] = {
    "project": tuple((t.name, "project_id") for t in TYPES.values() if t.scope == "project"),
    "dataset": (("dataset_snapshot", "dataset_id"),),
}
OBJECT_SCOPED = tuple(t.name for t in TYPES.values() if t.scope == "object")


def _check_filters() -> None:
    """Fail at import if a spec list parameter has no meaning here."""
    for t in TYPES.values():
        if t.has("list"):
            unknown = [p["name"] for p in spec.parameters(t.base, "get") if p["name"] not in FILTERS]
            if unknown:
                raise RuntimeError(f"{t.base}: list parameters without semantics: {unknown}")


_check_filters()
# A reference row for a type that does not exist would silently check nothing.
_unknown_owners = {r.owner for r in REFERENCES} - set(TYPES)
if _unknown_owners:
    raise RuntimeError(f"reference table rows for unknown types: {sorted(_unknown_owners)}")
