"""``POST /insert-functions``: what the official SDK's ``project.publish()`` and ``braintrust push`` send.

Read from the SDK's source (``braintrust/framework2.py``, ``braintrust/cli/push.py``, 0.47):
the body is ``{"functions": [definition, ...]}``; a definition carries ``project_id`` (the SDK
resolves names through ``POST /v1/project`` first), ``name``, ``slug``, ``description``,
``function_data`` (``{"type": "prompt"}`` for prompts and LLM scorers, ``code`` bundles for
pushed tools / scorers, ``parameters``), ``prompt_data``, ``function_type``, ``function_schema``,
``metadata``, ``tags`` and ``if_exists`` (``error`` | ``replace`` | ``ignore``, or null).

Decided where the sources are silent (``braintrust push --help``: "'error' will cause an
error and abort. 'replace' will overwrite the existing function. 'ignore' will ignore the
push for this function and continue"):

* a missing / null ``if_exists`` means ``error`` (the CLI's default);
* ``error`` on an existing slug aborts the whole request (400, nothing written: one transaction);
* ``replace`` is ``PUT`` (same id, a new ``_xact_id`` version); ``ignore`` leaves it unmodified;
* prompts and functions share one slug namespace per project, as on the hosted API, where a
  prompt *is* a function; the sandbox stores ``function_data.type == "prompt"`` definitions
  as prompt objects (what ``/v1/prompt`` and ``load_prompt`` read) and every other one as a
  function object. Replacing one kind by the other is refused (400), not emulated;
* ``metadata`` is dropped: neither ``CreatePrompt`` nor ``CreateFunction`` lets a client set it;
* ``project_name`` (with optional ``org_name``) is accepted in place of ``project_id``;
* the answer is ``{"status": "success", "functions": [{id, slug, project_id, object_type,
  found_existing}]}``.

Every object goes through the same create / replace handler and validation as ``/v1/prompt``
and ``/v1/function``. Code bundles are stored as given: the sandbox issues no bundle ids
(``POST /function/code`` is not served) and runs no code.
"""

from __future__ import annotations

from typing import Any

import orjson

from braintrust_migrate.sandbox.core.common import (
    ApiError,
    Ctx,
    Request,
    bad_request,
    ident_of,
    not_found,
    request_json,
    visible,
)
from braintrust_migrate.sandbox.core.store import Row
from braintrust_migrate.sandbox.objects import handlers
from braintrust_migrate.sandbox.objects.model import FUNCTION_LIKE, TYPES

IF_EXISTS = ("error", "replace", "ignore")


def insert_functions(ctx: Ctx) -> dict[str, Any]:
    body = request_json(ctx)
    functions = body.get("functions") if isinstance(body, dict) else None
    if not isinstance(functions, list):
        raise bad_request("functions: expected an array of function definitions")
    out = [_insert_one(ctx, d, f"functions[{i}]") for i, d in enumerate(functions)]
    return {"status": "success", "functions": out}


def _insert_one(ctx: Ctx, d: Any, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise bad_request(f"{where}: expected an object")
    if_exists = d.get("if_exists") or "error"
    if if_exists not in IF_EXISTS:
        raise bad_request(f"{where}.if_exists: expected one of {', '.join(IF_EXISTS)}")
    slug = d.get("slug")
    if not isinstance(slug, str) or not slug:
        raise bad_request(f"{where}.slug: a non-empty string is required")
    function_data = d.get("function_data")
    if not isinstance(function_data, dict) or not isinstance(function_data.get("type"), str):
        raise bad_request(f"{where}.function_data.type: required (prompt, code, parameters, ...)")
    project = _project(ctx, d, where)
    t = TYPES["prompt" if function_data["type"] == "prompt" else "function"]
    existing = _existing(ctx, project, slug)
    if existing is not None:
        if if_exists == "error":
            raise bad_request(
                f"{where}.slug: a function with slug {slug!r} already exists in project "
                f"{project.body['name']!r} (if_exists: error)"
            )
        if if_exists == "ignore":
            return _summary(existing.type, existing.body, found_existing=True)
        if existing.type != t.name:
            raise bad_request(
                f"{where}.function_data.type: slug {slug!r} is a {existing.type} in the sandbox; "
                f"replacing it by a {t.name} is not supported"
            )
    fields = {k: d[k] for k in t.settable if d.get(k) is not None}
    if isinstance(fields.get("prompt_data"), dict):
        fields["prompt_data"] = _resolve_tools(ctx, fields["prompt_data"], f"{where}.prompt_data")
    fields["project_id"] = project.id
    method = "PUT" if existing is not None else "POST"
    req = Request(t.base, method, {}, [], orjson.dumps(fields), ctx.req.authorization)
    try:
        created = handlers.create(Ctx(ctx.tx, ctx.caller, req, ctx.now), t, put=existing is not None)
    except ApiError as exc:
        raise ApiError(exc.status, f"{where}: {exc.message}") from None
    return _summary(t.name, created, found_existing=existing is not None)


def _resolve_tools(ctx: Ctx, prompt_data: dict[str, Any], where: str) -> dict[str, Any]:
    """The SDK names code tools by ``{"type": "slug", project_id, slug}``; stored objects hold ids."""
    tools = prompt_data.get("tool_functions")
    if not isinstance(tools, list):
        return prompt_data
    resolved = []
    for i, tool in enumerate(tools):
        if isinstance(tool, dict) and tool.get("type") == "slug":
            at = f"{where}.tool_functions[{i}]"
            project = _project(ctx, tool, at)
            row = _existing(ctx, project, str(tool.get("slug")))
            if row is None:
                raise bad_request(
                    f"{at}.slug: no function with slug {tool.get('slug')!r} in project "
                    f"{project.body['name']!r} (push the tool first)"
                )
            tool = {"type": "function", "id": row.id}
        resolved.append(tool)
    return {**prompt_data, "tool_functions": resolved}


def _project(ctx: Ctx, d: dict[str, Any], where: str) -> Row:
    if d.get("project_id") is not None:
        try:
            return visible(ctx, ("project",), str(d["project_id"]), label="project")
        except ApiError as exc:
            raise ApiError(exc.status, f"{where}.project_id: {exc.message}") from None
    name = d.get("project_name")
    if not isinstance(name, str):
        raise bad_request(f"{where}: project_id (or project_name) is required")
    ident = ident_of(TYPES["project"].identity, {"name": name}) or ""
    found = [
        row
        for org_id in ctx.caller.org_ids
        if (row := ctx.tx.find_ident("project", org_id, ident)) is not None
        and (d.get("org_name") is None or _org_name(ctx, org_id) == d["org_name"])
    ]
    if not found:
        raise not_found(f"{where}.project_name: project {name!r} not found")
    if len(found) > 1:
        raise bad_request(
            f"{where}.project_name: several organizations have a project {name!r}; pass org_name"
        )
    return found[0]


def _org_name(ctx: Ctx, org_id: str) -> str | None:
    row = ctx.tx.get(org_id, ["organization"])
    return row.body.get("name") if row is not None else None


def _existing(ctx: Ctx, project: Row, slug: str) -> Row | None:
    """The live prompt or function with ``slug`` in ``project`` (one namespace for both)."""
    for type_name in FUNCTION_LIKE:
        t = TYPES[type_name]
        ident = ident_of(t.identity, {"project_id": project.id, "slug": slug}) or ""
        row = ctx.tx.find_ident(t.name, project.org_id, ident)
        if row is not None:
            return row
    return None


def _summary(type_name: str, body: dict[str, Any], *, found_existing: bool) -> dict[str, Any]:
    return {
        "id": body["id"],
        "slug": body["slug"],
        "project_id": body["project_id"],
        "object_type": type_name,
        "found_existing": found_existing,
    }
