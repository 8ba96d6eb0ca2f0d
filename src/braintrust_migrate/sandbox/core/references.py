"""Every id-bearing body field the sandbox checks, as one table (braintrust-api.md §2).

One rule for all of them (issue #14): an id of an object that lives in *another* org
is refused with 400 and the words an unknown id gets
(``{path}: no {types} with id {id} in this organization``), so existence elsewhere is
never revealed. ``strict`` rows refuse an unknown id too; the others accept it, because
the hosted API lets such loosely-typed references dangle.

Anchor rows (``project_id``, ``dataset_id``, ``object_id``) decide which org a new object
goes to; they are checked where that org is found (403, same words for a foreign and
an unknown id), not by the body check.

Fields of §2 that are server-set, transaction ids, names/slugs, or external ids are
not references a request body can leak and are not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

# AclObjectType / EnvVar object_type -> the sandbox object types its object_id may name.
# organization-level kinds name the org itself. prompt ids may name functions too
# (prompts are functions in Braintrust). prompt_session has no endpoints in the spec,
# so no such object can exist in the sandbox.
OBJECT_ID_TARGETS: dict[str, tuple[str, ...]] = {
    "organization": ("organization",),
    "org_member": ("organization",),
    "org_project": ("organization",),
    "project": ("project",),
    "project_log": ("project",),
    "experiment": ("experiment",),
    "dataset": ("dataset",),
    "prompt": ("prompt", "function"),
    "function": ("function", "prompt"),
    "prompt_session": (),
    "group": ("group",),
    "role": ("role",),
}
# AclObjectType (what acl / view / function.origin accept); env_var adds "function".
ACL_OBJECT_TYPES = tuple(k for k in OBJECT_ID_TARGETS if k != "function")
ENV_VAR_OBJECT_TYPES = ("organization", "project", "function")

FUNCTION_LIKE = ("function", "prompt")


@dataclass(frozen=True)
class Ref:
    """A body field of ``owner`` that holds the id of another object.

    ``path`` uses dots, ``[*]`` for every array item and ``*`` for every map value.
    ``when`` = (key, value): only when the dict holding the id has key == value.
    ``strict``: the target must exist in the same org (a dangling id is refused).
    ``anchor``: the field decides the org of a new object (checked there, 403).
    """

    owner: str
    path: str
    targets: tuple[str, ...]
    strict: bool = True
    when: tuple[str, str] | None = None
    anchor: bool = False


def _anchor(owner: str, path: str, targets: tuple[str, ...]) -> Ref:
    return Ref(owner, path, targets, anchor=True)


def _fn_ref(owner: str, path: str) -> Ref:
    """A ``SavedFunctionId``: only the ``type: "function"`` shape carries an id."""
    return Ref(owner, path, FUNCTION_LIKE, strict=False, when=("type", "function"))


def _prompt_data(owner: str) -> tuple[Ref, ...]:
    return (
        _fn_ref(owner, "prompt_data.tool_functions[*].id"),
        Ref(owner, "prompt_data.mcp.*.id", ("mcp_server",), strict=False, when=("type", "id")),
        Ref(owner, "prompt_data.origin.prompt_id", FUNCTION_LIKE, strict=False),
        Ref(owner, "prompt_data.origin.project_id", ("project",), strict=False),
    )


def _object_ids(owner: str, path: str, kinds: tuple[str, ...], *, anchor: bool) -> tuple[Ref, ...]:
    """``object_type`` + ``object_id`` pairs: one row per object type the id may name."""
    return tuple(
        Ref(owner, path, OBJECT_ID_TARGETS[k], strict=anchor, when=("object_type", k), anchor=anchor)
        for k in kinds
    )


_PROJECT_ANCHORED = (
    "experiment",
    "dataset",
    "prompt",
    "function",
    "project_automation",
    "project_score",
    "project_tag",
    "span_iframe",
    "mcp_server",
)

REFERENCES: tuple[Ref, ...] = (
    *(_anchor(t, "project_id", ("project",)) for t in _PROJECT_ANCHORED),
    _anchor("dataset_snapshot", "dataset_id", ("dataset",)),
    *_object_ids("acl", "object_id", ACL_OBJECT_TYPES, anchor=True),
    *_object_ids("view", "object_id", ACL_OBJECT_TYPES, anchor=True),
    *_object_ids("env_var", "object_id", ENV_VAR_OBJECT_TYPES, anchor=True),
    # project (PATCH only)
    Ref("project", "user_id", ("user",)),
    Ref("project", "settings.baseline_experiment_id", ("experiment",)),
    _fn_ref("project", "settings.default_preprocessor.id"),
    # experiment
    Ref("experiment", "base_exp_id", ("experiment",)),
    Ref("experiment", "dataset_id", ("dataset",)),
    Ref("experiment", "parameters_id", FUNCTION_LIKE),
    # prompt / function
    *_prompt_data("prompt"),
    *_prompt_data("function"),
    *_object_ids("function", "origin.object_id", ACL_OBJECT_TYPES, anchor=False),
    _fn_ref("function", "function_data.preprocessor.id"),
    Ref("function", "function_data.topic_maps.*[*].topic_map_id", FUNCTION_LIKE, strict=False),
    # Graph nodes: an untyped FunctionIdRef, in each FunctionId shape that carries an id.
    Ref("function", "function_data.nodes.*.function.function_id", FUNCTION_LIKE, strict=False),
    Ref("function", "function_data.nodes.*.function.prompt_session_id", ("prompt_session",), strict=False),
    Ref(
        "function",
        "function_data.nodes.*.function.prompt_session_function_id",
        ("prompt_session",),
        strict=False,
    ),
    # role / group (create lists and the PATCH add_* deltas)
    Ref("role", "member_roles[*]", ("role",)),
    Ref("role", "add_member_roles[*]", ("role",)),
    Ref("group", "member_users[*]", ("user",)),
    Ref("group", "member_groups[*]", ("group",)),
    Ref("group", "add_member_users[*]", ("user",)),
    Ref("group", "add_member_groups[*]", ("group",)),
    # acl
    Ref("acl", "user_id", ("user",)),
    Ref("acl", "group_id", ("group",)),
    Ref("acl", "role_id", ("role",)),
    # project_automation (topic config)
    _fn_ref("project_automation", "config.facet_functions[*].id"),
    _fn_ref("project_automation", "config.topic_map_functions[*].function.id"),
    Ref("project_automation", "config.data_scope.experiment_id", ("experiment",), strict=False),
    # project_score
    _fn_ref("project_score", "config.online.scorers[*].id"),
    # view
    Ref("view", "user_id", ("user",), strict=False),
    # service_token
    Ref("service_token", "service_account_id", ("user",)),
)


def body_refs(owner: str) -> tuple[Ref, ...]:
    """The rows the body check applies to ``owner`` (anchors are checked where the org is found)."""
    return tuple(r for r in REFERENCES if r.owner == owner and not r.anchor)
