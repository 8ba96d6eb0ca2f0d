"""Request context and the helpers every sandbox handler shares.

Handlers are plain synchronous functions ``handler(ctx) -> JSON value`` run inside
one store transaction; they signal failures by raising :class:`ApiError`, which the
app turns into ``{"error": "..."}`` with the given status.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson

from braintrust_migrate.sandbox.core import permissions, spec
from braintrust_migrate.sandbox.core.errors import ApiError as ApiError  # re-exported for handlers
from braintrust_migrate.sandbox.core.references import OBJECT_ID_TARGETS, Ref
from braintrust_migrate.sandbox.core.store import KeyInfo, Row, Tx, dumps

if TYPE_CHECKING:
    from starlette.requests import Request as HttpRequest


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def request_json(ctx: Ctx) -> Any:
    """The request body as JSON (``{}`` when empty), without schema validation."""
    try:
        return orjson.loads(ctx.req.raw_body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Malformed JSON body: {exc}") from None


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def ident_of(fields: tuple[str, ...], body: dict[str, Any]) -> str | None:
    return dumps([body.get(f) for f in fields]) if fields else None


@dataclass
class Request:
    """What a handler may read from the HTTP request (already off the event loop)."""

    spec_path: str  # the spec's path template, e.g. "/v1/project/{project_id}"
    method: str
    path_params: dict[str, str]
    query: list[tuple[str, str]]
    raw_body: bytes
    authorization: str | None = None

    @classmethod
    async def read(
        cls, request: HttpRequest, spec_path: str, method: str, path_params: dict[str, str] | None = None
    ) -> Request:
        """The handler's view of a Starlette request (the body read here, on the event loop)."""
        return cls(
            spec_path=spec_path,
            method=method,
            path_params=dict(request.path_params) if path_params is None else path_params,
            query=request.query_params.multi_items(),
            raw_body=await request.body(),
            authorization=request.headers.get("authorization"),
        )


@dataclass
class Ctx:
    tx: Tx
    caller: KeyInfo
    req: Request
    now: str = field(default_factory=now_iso)

    # --- inputs, validated against the spec ---------------------------------------------------

    def body(self) -> dict[str, Any]:
        """The JSON body, validated against the operation's request schema (400 otherwise)."""
        raw = self.req.raw_body.strip()
        try:
            value = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"Malformed JSON body: {exc}") from None
        pointer = spec.request_body_pointer(self.req.spec_path, self.req.method)
        if pointer:
            errors = spec.validate_pointer(pointer, value)
            if errors:
                raise bad_request("Invalid request body: " + "; ".join(errors[:5]))
        if not isinstance(value, dict):
            raise bad_request("Invalid request body: expected a JSON object")
        return value

    def path_id(self) -> str:
        """The single path parameter (an object id), validated as the spec says (uuid)."""
        for param in spec.parameters(self.req.spec_path, self.req.method):
            if param.get("in") == "path":
                value = self.req.path_params.get(param["name"], "")
                errors = spec.validate_pointer(param["pointer"], value)
                if errors:
                    raise bad_request(
                        f"Invalid path parameter {param['name']}: {errors[0].split(': ', 1)[-1]}"
                    )
                return value
        raise AssertionError(f"{self.req.spec_path} has no path parameter")

    def query(self) -> dict[str, Any]:
        """Declared query parameters, typed and validated; undeclared ones are ignored.

        The hosted API ignores query parameters it does not know, so the sandbox does
        too (a filter the spec does not list for an endpoint silently has no effect).
        """
        values: dict[str, list[str]] = {}
        for key, value in self.req.query:
            values.setdefault(key, []).append(value)
        out: dict[str, Any] = {}
        for param in spec.parameters(self.req.spec_path, self.req.method):
            if param.get("in") != "query":
                continue
            name = param["name"]
            given = values.get(name)
            if not given:
                if param.get("required"):
                    raise bad_request(f"Missing required query parameter: {name}")
                continue
            value = _coerce(param["pointer"], name, given)
            if value is None:
                continue
            errors = spec.validate_pointer(param["pointer"], value)
            if errors:
                raise bad_request(f"Invalid query parameter {name}: {errors[0].split(': ', 1)[-1]}")
            out[name] = value
        return out


@cache
def _param_types(pointer: str) -> frozenset[str]:
    """JSON types a parameter schema admits (looking through $ref and anyOf)."""
    types: set[str] = set()

    def walk(node: Any) -> None:
        if "$ref" in node:
            walk(spec.resolve(node["$ref"]))
        for branch in node.get("anyOf", []) + node.get("oneOf", []):
            walk(branch)
        t = node.get("type")
        types.update([t] if isinstance(t, str) else (t or []))

    walk(spec.resolve(pointer))
    return frozenset(types)


def _coerce(pointer: str, name: str, given: list[str]) -> Any:
    types = _param_types(pointer)
    if len(given) > 1:
        if "array" not in types:
            raise bad_request(f"Query parameter {name} may only be given once")
        return given
    text = given[0]
    if "null" in types and text in ("", "null"):
        return None
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            raise bad_request(f"Invalid query parameter {name}: {text!r} is not an integer") from None
    if "boolean" in types:
        if text not in ("true", "false"):
            raise bad_request(f"Invalid query parameter {name}: expected true or false")
        return text == "true"
    return text


# --- orgs ---------------------------------------------------------------------------------------


def org_by_name(ctx: Ctx, org_name: str) -> str:
    row = ctx.tx.find_ident_anywhere("organization", dumps([org_name]))
    if row is None or row.id not in ctx.caller.org_ids:
        raise forbidden(f"org_name: this API key has no access to an organization named {org_name!r}")
    return row.id


def single_org(ctx: Ctx, org_name: str | None) -> str:
    """The org a create acts in: ``org_name`` if given, else the key's only org."""
    if org_name is not None:
        return org_by_name(ctx, org_name)
    if len(ctx.caller.org_ids) == 1:
        return ctx.caller.org_ids[0]
    if not ctx.caller.org_ids:
        raise forbidden("This API key does not belong to any organization")
    names = sorted(_org_name(ctx, org_id) for org_id in ctx.caller.org_ids)
    raise bad_request(
        f"This API key belongs to several organizations ({', '.join(names)}); "
        "pass org_name to say which one the request is for"
    )


def list_scope(ctx: Ctx, org_name: str | None) -> list[str]:
    """Orgs a list covers: ``org_name`` narrows; without it, every org of the key.

    The spec describes ``org_name`` on lists as "Filter search results to within a
    particular organization", i.e. a filter, not a required disambiguator.
    """
    return [org_by_name(ctx, org_name)] if org_name is not None else list(ctx.caller.org_ids)


def _org_name(ctx: Ctx, org_id: str) -> str:
    row = ctx.tx.get(org_id, ["organization"])
    return row.body["name"] if row else org_id


# --- visibility & references --------------------------------------------------------------------


def visible(ctx: Ctx, types: tuple[str, ...], id_: str, *, label: str) -> Row:
    """A live object of the caller's orgs (else 404) that it may read (else 403)."""
    row = ctx.tx.get(id_, types)
    if row is None or not can_see(ctx, row):
        raise not_found(f"{label} {id_} not found")
    if not permissions.readable(ctx.tx, row):
        permissions.require("read_acls" if row.type == "acl" else "read", permissions.target_of(ctx.tx, row))
    return row


def can_see(ctx: Ctx, row: Row) -> bool:
    if row.type == "user":
        return any(ctx.tx.is_member(org_id, row.id) for org_id in ctx.caller.org_ids)
    if row.org_id is None:  # system roles are visible to everyone
        return row.type == "role"
    return row.org_id in ctx.caller.org_ids


def anchor_org(ctx: Ctx, field_name: str, types: tuple[str, ...], id_: str) -> Row:
    """The object that decides the org of a new object (e.g. its project); 403 if not reachable."""
    row = ctx.tx.get(id_, types) if types else None
    if row is None or row.type == "user" or not can_see(ctx, row) or row.org_id is None:
        kind = "/".join(types) or "object"
        raise forbidden(f"{field_name}: {kind} {id_} does not exist or is not accessible with this API key")
    return row


def object_anchor(ctx: Ctx, object_type: str, object_id: str) -> str:
    """Org of the object an acl / view / env_var is attached to (403 if not reachable)."""
    targets = OBJECT_ID_TARGETS.get(object_type, ())
    if targets == ("organization",):
        if object_id not in ctx.caller.org_ids:
            raise forbidden(f"object_id: organization {object_id} is not accessible with this API key")
        return object_id
    row = anchor_org(ctx, "object_id", targets, object_id)
    return row.org_id or ""


def iter_path(value: Any, parts: list[str], where: str) -> Iterator[tuple[str, Any, Any]]:
    """Yield (concrete path, parent container, value) for a Ref path."""
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    array = head.endswith("[*]")
    key = head[:-3] if array else head
    if key == "*":
        items = list(value.items()) if isinstance(value, dict) else []
    else:
        items = [(key, value.get(key))] if isinstance(value, dict) and key in value else []
    for name, child in items:
        here = f"{where}.{name}" if where else name
        targets = (
            [(f"{here}[{i}]", item) for i, item in enumerate(child)]
            if array and isinstance(child, list)
            else []
        )
        if not array:
            targets = [(here, child)]
        for path, item in targets:
            if rest:
                yield from iter_path(item, rest, path)
            else:
                yield path, (child if array else value), item


def check_refs(ctx: Ctx, refs: tuple[Ref, ...], fields: dict[str, Any], org_id: str) -> None:
    """Refuse ids of objects outside ``org_id`` (400, naming the field)."""
    for ref in refs:
        for path, parent, value in iter_path(fields, ref.path.split("."), ""):
            if not isinstance(value, str):
                continue
            if ref.when and not (isinstance(parent, dict) and parent.get(ref.when[0]) == ref.when[1]):
                continue
            _check_one(ctx, ref, path, value, org_id)


def _check_one(ctx: Ctx, ref: Ref, path: str, value: str, org_id: str) -> None:
    """One rule for every reference row: foreign ids are refused in the words of an unknown id."""
    if not _in_org(ctx, ref.targets, value, org_id):
        row = ctx.tx.get(value, ref.targets) if ref.targets else None
        # Not strict: an id that names nothing is kept (it may dangle, as on the real API),
        # unless it names an object of another org under any type (a leaked source id).
        if ref.strict or row is not None or _foreign_anywhere(ctx, value, org_id):
            raise bad_request(f"{path}: no {'/'.join(ref.targets)} with id {value} in this organization")


def _in_org(ctx: Ctx, targets: tuple[str, ...], value: str, org_id: str) -> bool:
    if targets == ("user",):
        return ctx.tx.get(value, ["user"]) is not None and ctx.tx.is_member(org_id, value)
    if "organization" in targets and value == org_id:
        return True
    row = ctx.tx.get(value, targets) if targets else None
    if row is None:
        return False
    return row.org_id == org_id or (row.org_id is None and row.type == "role")  # system roles


def _foreign_anywhere(ctx: Ctx, value: str, org_id: str) -> bool:
    row = ctx.tx.get(value)
    if row is None or row.type in ("user", "organization"):
        # users are global; an org id is "another org" only if it is not this one
        return row is not None and row.type == "organization" and row.id != org_id
    return row.org_id is not None and row.org_id != org_id


# --- bodies -------------------------------------------------------------------------------------


@cache
def null_defaults(schema: str) -> dict[str, Any]:
    """Values the API returns for fields nobody set: the schema default, else null when allowed."""
    out: dict[str, Any] = {}
    for name, prop in spec.schema_properties(schema).items():
        if "default" in prop:
            out[name] = prop["default"]
        elif spec.property_accepts_null(schema, name):
            out[name] = None
    return out


def ordered(schema: str, body: dict[str, Any]) -> dict[str, Any]:
    """Fields in the order the response schema declares them (extra ones last)."""
    props = spec.schema_properties(schema)
    out = {k: body[k] for k in props if k in body}
    out.update({k: v for k, v in body.items() if k not in out})
    return out


def deep_merge(base: Any, patch: Any) -> Any:
    """PATCH semantics: objects merge recursively, everything else replaces, nulls are ignored.

    "Currently we do not support removing fields or setting them to null", so a null
    anywhere in a patch leaves the stored value as it was.
    """
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return patch
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            continue
        out[key] = deep_merge(base.get(key), value) if isinstance(value, dict) else value
    return out


def check_response(schema: str, body: dict[str, Any]) -> None:
    """Refuse a write whose result would not be a valid ``schema`` object (e.g. a bad deep merge)."""
    errors = spec.validate_component(schema, body)
    if errors:
        raise bad_request("The resulting object would be invalid: " + "; ".join(errors[:5]))


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "dataset"
