"""The official Braintrust OpenAPI spec, made usable by a JSON Schema validator.

The spec is OpenAPI 3.0.3 and says "nullable: true" 1,499 times, but also uses
OAS 3.1-style ``{"type": "null"}`` in a few places. Neither OAS 3.0 validators
(they crash on ``type: null``) nor JSON Schema validators (they ignore
``nullable``) read it correctly as published. :func:`fixed_spec` rewrites it into
a document that JSON Schema 2020-12 (and OpenAPI 3.1 tools such as schemathesis)
read the way the spec's authors meant:

* ``nullable: true`` next to ``type`` becomes a type union ``[T, "null"]``
  (and ``null`` joins the ``enum`` when there is one); next to ``$ref`` /
  ``anyOf`` / ``oneOf`` / ``allOf`` the schema is wrapped in
  ``anyOf: [<schema>, {"type": "null"}]``; alone (no type at all) it is dropped,
  since a schema without a type already accepts null.
* OAS 3.0 boolean ``exclusiveMinimum: true`` (5 places in
  ``TopicMapGenerationSettings``) becomes the numeric 2020-12 form.

Spec bugs patched here (each one documented, nothing else is changed):

* ``ViewType``, ``FunctionTypeEnum`` and the inline ``view_type`` of ``View`` /
  ``CreateView`` list ``null`` in their ``enum`` on a string that is not
  nullable, so a strict validator refuses the very value the enum offers. We
  honour the enum: those schemas become nullable. (The server thus accepts and
  may return ``view_type: null``.)

Everything is validated through one :class:`referencing.Registry` holding the
fixed document, addressed by JSON pointer, so inline request bodies and
parameters validate with the same machinery as named components.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import importlib.resources
import uuid
from functools import cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:braintrust:openapi"

# Keys whose values are data, not schemas: never rewrite inside them.
_DATA_KEYS = frozenset({"enum", "default", "example", "examples", "const", "required"})
# Keys whose values are maps of name -> schema.
_MAP_KEYS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_COMPOSITE = ("$ref", "anyOf", "oneOf", "allOf")


@cache
def raw_spec() -> dict[str, Any]:
    """The vendored spec exactly as published (parsed once per process)."""
    data = (
        importlib.resources.files("braintrust_migrate.sandbox.core")
        .joinpath("openapi_spec.json.gz")
        .read_bytes()
    )
    return orjson.loads(gzip.decompress(data))


def _fix_schema(node: Any) -> Any:
    """Return a JSON Schema 2020-12 version of one OAS 3.0 schema node (recursively)."""
    if isinstance(node, list):
        return [_fix_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DATA_KEYS:
            out[key] = copy.deepcopy(value)
        elif key in _MAP_KEYS and isinstance(value, dict):
            out[key] = {name: _fix_schema(sub) for name, sub in value.items()}
        else:
            out[key] = _fix_schema(value)

    # OAS 3.0 boolean exclusiveMinimum/Maximum -> numeric (2020-12).
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(bound) is True and plain in out:
            out[bound] = out.pop(plain)
        elif out.get(bound) is False:
            out.pop(bound)

    nullable = bool(out.pop("nullable", False))
    # Spec bug: an enum that lists null on a non-nullable string. Honour the enum.
    if isinstance(out.get("enum"), list) and None in out["enum"]:
        nullable = True
    if not nullable:
        return out
    if any(key in out for key in _COMPOSITE):
        # Keep annotations outside so the wrapped part is a pure constraint.
        annotations = {k: out.pop(k) for k in ("description", "title", "default") if k in out}
        return {**annotations, "anyOf": [out, {"type": "null"}]}
    if "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        if "null" not in types:
            out["type"] = [*types, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


@cache
def fixed_spec() -> dict[str, Any]:
    """The whole spec with every schema rewritten (see module docstring).

    ``openapi`` is set to ``3.1.0`` because the schemas are now JSON Schema
    2020-12, which is what OAS 3.1 tools expect. Callers must not mutate it.
    """
    spec = raw_spec()
    fixed = {key: value for key, value in spec.items() if key not in ("paths", "components")}
    fixed["openapi"] = "3.1.0"
    components = dict(spec["components"])
    components["schemas"] = {
        name: _fix_schema(schema) for name, schema in spec["components"]["schemas"].items()
    }
    components["parameters"] = {
        name: _fix_param(param) for name, param in spec["components"]["parameters"].items()
    }
    fixed["components"] = components
    fixed["paths"] = {path: _fix_path_item(item) for path, item in spec["paths"].items()}
    return fixed


def _fix_param(param: dict[str, Any]) -> dict[str, Any]:
    out = dict(param)
    if "schema" in out:
        out["schema"] = _fix_schema(out["schema"])
    return out


def _fix_path_item(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method, op in item.items():
        if not isinstance(op, dict):
            out[method] = op
            continue
        op = dict(op)
        if "parameters" in op:
            op["parameters"] = [_fix_param(p) for p in op["parameters"]]
        if "requestBody" in op:
            op["requestBody"] = _fix_content_holder(op["requestBody"])
        if "responses" in op:
            op["responses"] = {code: _fix_content_holder(resp) for code, resp in op["responses"].items()}
        out[method] = op
    return out


def _fix_content_holder(holder: dict[str, Any]) -> dict[str, Any]:
    out = dict(holder)
    if "content" in out:
        out["content"] = {
            media: {**body, "schema": _fix_schema(body["schema"])} if "schema" in body else body
            for media, body in out["content"].items()
        }
    if "headers" in out:
        out["headers"] = {
            name: {**h, "schema": _fix_schema(h["schema"])} if "schema" in h else h
            for name, h in out["headers"].items()
        }
    return out


# --- validation -------------------------------------------------------------------------------

_formats = FormatChecker(formats=())


@_formats.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    # Canonical 8-4-4-4-12 hex form only (uuid.UUID also accepts braces, urn:...).
    return (
        len(value) == 36 and value[8] == value[13] == value[18] == value[23] == "-" and bool(uuid.UUID(value))
    )


@_formats.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        raise ValueError("not an RFC 3339 date-time")
    parsed = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    return parsed.tzinfo is not None


def format_checker() -> FormatChecker:
    """The format checker the sandbox uses (uuid and RFC 3339 date-time)."""
    return _formats


@cache
def registry() -> Registry:
    return Registry().with_resource(
        SPEC_URI, Resource.from_contents(fixed_spec(), default_specification=DRAFT202012)
    )


def pointer_escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@cache
def validator_for_pointer(pointer: str) -> Draft202012Validator:
    """A validator for the schema at ``pointer`` (e.g. ``/components/schemas/Project``)."""
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry(), format_checker=_formats
    )


def component_pointer(name: str) -> str:
    if name not in fixed_spec()["components"]["schemas"]:
        raise KeyError(f"no component schema named {name!r}")
    return f"/components/schemas/{pointer_escape(name)}"


def _closest_branch(error: ValidationError) -> ValidationError:
    """For an anyOf/oneOf failure, the sub-error of the branch the caller most likely meant.

    Branches whose discriminator (an enum/const on a direct property, e.g. ``type``
    or ``role``) failed are unlikely; among the rest, fewer errors wins.
    """
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0] if sub.relative_schema_path else None, []).append(sub)

    def score(errs: list[ValidationError]) -> tuple[int, int, int]:
        wrong_kind = any(e.validator in ("enum", "const") and len(e.relative_path) <= 1 for e in errs)
        return (int(wrong_kind), len(errs), -max(len(e.absolute_path) for e in errs))

    best = min(branches.values(), key=score)
    return max(best, key=lambda e: len(e.absolute_path))


def _describe(error: ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    where = path.lstrip(".") or "(root)"
    if error.validator in ("anyOf", "oneOf") and error.context:
        message = f"does not match any allowed shape (closest: {_describe(_closest_branch(error))})"
    else:
        message = error.message
    if len(message) > 400:
        message = message[:397] + "..."
    return f"{where}: {message}"


def validate_pointer(pointer: str, instance: Any) -> list[str]:
    """Validate against the schema at ``pointer``; return messages naming the field path."""
    validator = validator_for_pointer(pointer)
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    return [_describe(e) for e in errors]


def validate_component(name: str, instance: Any) -> list[str]:
    """Validate ``instance`` against component schema ``name``; [] when valid."""
    return validate_pointer(component_pointer(name), instance)


def is_valid_pointer(pointer: str, instance: Any) -> bool:
    return validator_for_pointer(pointer).is_valid(instance)


# --- operations -------------------------------------------------------------------------------


def operation(path: str, method: str) -> dict[str, Any]:
    """The fixed operation object for ``method`` on spec path template ``path``."""
    return fixed_spec()["paths"][path][method.lower()]


def operation_pointer(path: str, method: str) -> str:
    return f"/paths/{pointer_escape(path)}/{method.lower()}"


def request_body_pointer(path: str, method: str) -> str | None:
    op = operation(path, method)
    if "application/json" not in op.get("requestBody", {}).get("content", {}):
        return None
    return f"{operation_pointer(path, method)}/requestBody/content/application~1json/schema"


def response_pointer(path: str, method: str, status: int = 200) -> str | None:
    op = operation(path, method)
    if "application/json" not in op.get("responses", {}).get(str(status), {}).get("content", {}):
        return None
    return f"{operation_pointer(path, method)}/responses/{status}/content/application~1json/schema"


def resolve(pointer_or_ref: str) -> Any:
    """Follow a JSON pointer (or a ``#/...`` ref) inside the fixed spec."""
    pointer = pointer_or_ref.split("#", 1)[-1]
    node: Any = fixed_spec()
    for token in pointer.strip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def parameters(path: str, method: str) -> list[dict[str, Any]]:
    """Resolved parameters of an operation, each with a ``pointer`` to its schema."""
    out = []
    for index, param in enumerate(operation(path, method).get("parameters", [])):
        if "$ref" in param:
            ref = param["$ref"].split("#", 1)[1]
            resolved = dict(resolve(ref))
            resolved["pointer"] = f"{ref}/schema"
        else:
            resolved = dict(param)
            resolved["pointer"] = f"{operation_pointer(path, method)}/parameters/{index}/schema"
        out.append(resolved)
    return out


def schema_properties(component: str) -> dict[str, Any]:
    """Properties of an object component schema (empty if it has none)."""
    return dict(fixed_spec()["components"]["schemas"][component].get("properties", {}))


def property_accepts_null(component: str, prop: str) -> bool:
    pointer = f"{component_pointer(component)}/properties/{pointer_escape(prop)}"
    return is_valid_pointer(pointer, None)
