"""Generic create / replace / list / get / patch / delete, driven by :mod:`.model`.

Type-specific server behaviour (server-set fields, deltas, locators) is kept in
small hook functions at the bottom, keyed by type name.
"""

from __future__ import annotations

import itertools
import re
import secrets
import string
from collections.abc import Callable
from typing import Any

from braintrust_migrate.sandbox.core import permissions, spec
from braintrust_migrate.sandbox.core.common import (
    Ctx,
    anchor_org,
    bad_request,
    can_see,
    check_refs,
    check_response,
    deep_merge,
    forbidden,
    ident_of,
    list_scope,
    new_id,
    not_found,
    null_defaults,
    object_anchor,
    ordered,
    single_org,
    slugify,
    visible,
)
from braintrust_migrate.sandbox.core.store import Row
from braintrust_migrate.sandbox.objects.model import ANCHORS, CASCADES, OBJECT_SCOPED, TYPES, ObjectType

_SQLITE_MAX = 2**63 - 1
# Fields a replace (PUT) keeps from the object it replaces.
_KEPT_ON_REPLACE = ("id", "created", "org_id", "user_id", "_object_org_id", "url_slug", "position", "log_id")


# --- org of a new object ------------------------------------------------------------------------


def create_org(ctx: Ctx, t: ObjectType, body: dict[str, Any]) -> str:
    """The org a new object goes to, inferred the way the hosted API does (§5)."""
    if t.scope == "org":
        return single_org(ctx, body.get("org_name"))
    if t.scope == "object":
        return object_anchor(ctx, body["object_type"], body["object_id"])
    field_name, types = ANCHORS[t.scope]
    return anchor_org(ctx, field_name, types, body[field_name]).org_id or ""


def _new_target(ctx: Ctx, t: ObjectType, org_id: str, body: dict[str, Any]) -> permissions.Target:
    """Where a new object will sit: what its create permission is checked on."""
    if t.scope == "object":
        return permissions.attached_target(ctx.tx, body["object_type"], body["object_id"], org_id)
    if t.scope == "dataset":
        dataset = ctx.tx.get(body["dataset_id"], ["dataset"])
        return permissions.new_target(t.name, org_id, dataset.body.get("project_id") if dataset else None)
    return permissions.new_target(t.name, org_id, body.get("project_id") if t.scope == "project" else None)


def get_row(ctx: Ctx, t: ObjectType, id_: str) -> Row:
    return visible(ctx, (t.name,), id_, label=t.name)


# --- create / replace ---------------------------------------------------------------------------


def create(ctx: Ctx, t: ObjectType, *, put: bool = False) -> dict[str, Any]:
    body = ctx.body()
    org_id = create_org(ctx, t, body)
    permissions.require(permissions.needed(t.name, "create"), _new_target(ctx, t, org_id, body))
    fields = {k: body[k] for k in t.settable if k in body}
    check_refs(ctx, t.refs, fields, org_id)
    validate_semantics(t, fields)
    identity = t.put_identity if put and t.put_identity is not None else t.identity
    existing = ctx.tx.find_ident(t.name, org_id, ident_of(identity, fields) or "") if identity else None
    if existing is None and identity and t.include_global:
        system = ctx.tx.find_ident(t.name, None, ident_of(identity, fields) or "")
        if system is not None:  # the org lists it: "an existing role with the same name"
            if put:
                raise forbidden(f"name: {t.name} {system.id} is a system {t.name} and cannot be edited")
            return system.body
    if t.name == "experiment" and fields.get("name") is None:  # optional (and nullable) on create
        fields["name"] = _unique_name(ctx, t, org_id, fields, "experiment")
    if existing is not None and not put:
        if t.name == "environment":
            raise bad_request(
                f"slug: an environment with slug {fields['slug']!r} already exists in this organization"
            )
        if t.name == "experiment" and body.get("ensure_new"):
            fields["name"] = _unique_name(ctx, t, org_id, fields, fields["name"])
            existing = None
        else:
            return existing.body  # "will return the existing X unmodified"
    if existing is not None:  # a replace changes the object
        permissions.require(permissions.needed(t.name, "update"), permissions.target_of(ctx.tx, existing))
    secret = body.get(t.secret_field) if t.secret_field else None
    if existing is not None and secret is None:
        secret = existing.secret  # PUT without the secret keeps the old value
    new = _build(ctx, t, org_id, fields, existing)
    create_hook: CreateHook = CREATE_HOOKS.get(t.name, _no_hook)
    extra = create_hook(ctx, t, new, existing, secret, body)
    new = ordered(t.schema, new)
    check_response(t.schema, new)
    ident = ident_of(t.identity or t.put_identity or (), new)
    if existing is not None:
        row = ctx.tx.update(existing, new, ident=ident, secret=secret)
    else:
        row = ctx.tx.insert(t.name, org_id, new, ident=ident, secret=secret)
    if t.versioned:
        ctx.tx.add_version(row.id, new["_xact_id"], new)
    return {**row.body, **extra} if extra else row.body


def _build(
    ctx: Ctx, t: ObjectType, org_id: str, fields: dict[str, Any], existing: Row | None
) -> dict[str, Any]:
    props = spec.schema_properties(t.schema)
    body: dict[str, Any] = dict(null_defaults(t.schema))
    if existing is not None:
        body.update({k: existing.body[k] for k in _KEPT_ON_REPLACE if k in existing.body})
    else:
        body["id"] = new_id()
        if "created" in props:
            body["created"] = ctx.now
        if "org_id" in props:
            body["org_id"] = org_id
    body.update(fields)
    if "user_id" in props and t.name != "acl" and body.get("user_id") is None:
        body["user_id"] = ctx.caller.user_id  # the creator (an acl's user_id is its grantee instead)
    return ordered(t.schema, body)


def _unique_name(ctx: Ctx, t: ObjectType, org_id: str, fields: dict[str, Any], stem: str) -> str:
    """A name free in the project: ``stem`` itself (unless it is the default stem), else ``stem-1``, ``stem-2``..."""
    first = [] if stem == "experiment" else [stem]
    for candidate in itertools.chain(first, (f"{stem}-{n}" for n in itertools.count(1))):
        ident = ident_of(t.identity, {**fields, "name": candidate}) or ""
        if ctx.tx.find_ident(t.name, org_id, ident) is None:
            return candidate
    raise AssertionError("unreachable")


def validate_semantics(t: ObjectType, fields: dict[str, Any]) -> None:
    """Rules the spec states in prose rather than in the schema."""
    if t.name == "acl":
        if (fields.get("user_id") is None) == (fields.get("group_id") is None):
            raise bad_request("Exactly one of user_id and group_id must be provided")
        if (fields.get("permission") is None) == (fields.get("role_id") is None):
            raise bad_request("Exactly one of permission and role_id must be provided")
        if fields.get("role_id") is not None and fields.get("restrict_object_type") is not None:
            raise bad_request("restrict_object_type cannot be set alongside a role_id")


# --- list ---------------------------------------------------------------------------------------


def list_rows(ctx: Ctx, t: ObjectType, query: dict[str, Any]) -> list[Row]:
    if "starting_after" in query and "ending_before" in query:
        raise bad_request("You may only pass one of starting_after and ending_before")
    org_ids = list_scope(ctx, query.get("org_name"))
    where: list[str] = []
    args: list[Any] = []
    scope_orgs: list[str] | None = org_ids
    if t.name == "user":
        scope_orgs = None
        where.append(
            f"id IN (SELECT user_id FROM memberships WHERE org_id IN ({','.join('?' * len(org_ids))}))"
        )
        args += org_ids
    for name, value in query.items():
        f = t.list_params[name]
        if f.kind == "eq" or (f.kind == "project_name" and t.name == "project"):
            where.append(f"json_extract(body, '$.{f.field or 'name'}') = ?")
            args.append(value)
        elif f.kind == "in":
            values = value if isinstance(value, list) else [value]
            where.append(f"json_extract(body, '$.{f.field}') IN ({','.join('?' * len(values))})")
            args += values
        elif f.kind == "project_name":
            where.append(
                "json_extract(body, '$.project_id') IN (SELECT id FROM objects WHERE type = 'project' "
                f"AND deleted = 0 AND json_extract(body, '$.name') = ? AND org_id IN ({','.join('?' * len(org_ids))}))"
            )
            args += [value, *org_ids]
    ids = query.get("ids")
    limit = query.get("limit", _default_limit(t))
    if limit is not None and limit > _SQLITE_MAX:
        limit = None  # more than could ever exist: no limit
    if "environment" in query:
        _environment_filter(ctx, t, query, org_ids)
    if t.name == "acl":
        _require_acl_read(ctx, query, org_ids)
    restricted = permissions.restricted()
    rows = ctx.tx.select(
        t.name,
        org_ids=scope_orgs,
        include_global=t.include_global,
        where=where,
        params=args,
        ids=None if ids is None else ids if isinstance(ids, list) else [ids],
        after_seq=_cursor(ctx, t, query, "starting_after"),
        before_seq=_cursor(ctx, t, query, "ending_before"),
        limit=None if restricted else limit,
    )
    if restricted:  # lists leave out what the key may not read (a page is filled from what it may)
        rows = [r for r in rows if permissions.readable(ctx.tx, r)]
        if limit is not None:
            rows = rows[-limit:] if "ending_before" in query else rows[:limit]
    if "version" in query:
        rows = [r for r in (_at_version(ctx, r, query["version"]) for r in rows) if r is not None]
    return rows


def _require_acl_read(ctx: Ctx, query: dict[str, Any], org_ids: list[str]) -> None:
    """ACLs of an object need read_acls on it; list_org needs read_acls on the organization."""
    if "object_type" in query and "object_id" in query:
        object_id = query["object_id"]
        row = ctx.tx.get(object_id)
        org_id = object_id if object_id in ctx.caller.org_ids else row.org_id if row else None
        if org_id in ctx.caller.org_ids:  # another org's object: the list is empty, as before
            target = permissions.attached_target(ctx.tx, query["object_type"], object_id, org_id or "")
            permissions.require("read_acls", target)
        return
    for org_id in org_ids:
        permissions.require("read_acls", permissions.Target("organization", org_id, None, org_id))


def list_objects(ctx: Ctx, t: ObjectType) -> dict[str, Any]:
    return {"objects": [r.body for r in list_rows(ctx, t, ctx.query())]}


def _default_limit(t: ObjectType) -> int | None:
    for param in spec.parameters(t.base, "get"):
        if param["name"] == "limit":
            schema = spec.resolve(param["pointer"])
            schema = spec.resolve(schema["$ref"]) if "$ref" in schema else schema
            return schema.get("default")
    return None


def _cursor(ctx: Ctx, t: ObjectType, query: dict[str, Any], name: str) -> int | None:
    if name not in query:
        return None
    row = ctx.tx.get(query[name], [t.name], include_deleted=True)
    seq = row.seq if row is not None and can_see(ctx, row) else None
    if seq is None:  # another org's id answers like an unknown one
        raise bad_request(f"{name}: no {t.name} with id {query[name]}")
    return seq


# --- get ----------------------------------------------------------------------------------------


def get(ctx: Ctx, t: ObjectType) -> dict[str, Any]:
    id_ = ctx.path_id()
    query = ctx.query()
    row = get_row(ctx, t, id_)
    if t.name == "view":
        _check_locator(row, query)
    if t.versioned:
        if "environment" in query:
            _environment_filter(ctx, t, query, [row.org_id or ""], single=row)
        if "version" in query:
            at = _at_version(ctx, row, query["version"])
            if at is None:
                raise not_found(f"{t.name} {id_} has no version {query['version']}")
            return at.body
    return row.body


def _at_version(ctx: Ctx, row: Row, version: str) -> Row | None:
    if not re.fullmatch(r"[0-9]{1,30}", version):
        raise bad_request(
            "version: the sandbox understands transaction ids (the _xact_id of a version), not version identifiers"
        )
    body = ctx.tx.version_at(row.id, min(int(version), _SQLITE_MAX))
    return None if body is None else Row(row.seq, row.type, row.id, row.org_id, row.deleted, body, row.secret)


def _environment_filter(
    ctx: Ctx, t: ObjectType, query: dict[str, Any], org_ids: list[str], single: Row | None = None
) -> None:
    """``environment=<slug>``: nothing in the spec binds versions to environments, so none resolve."""
    if "version" in query:
        raise bad_request("environment cannot be used together with version")
    slug = query["environment"]
    known = any(
        ctx.tx.find_ident("environment", org_id, ident_of(("slug",), {"slug": slug}) or "")
        for org_id in org_ids
    )
    if not known:
        raise bad_request(f"environment: no environment with slug {slug!r}")
    if single is None:
        raise bad_request(
            "environment resolution requires the request to match a single "
            f"{t.name}; no {t.name} version is assigned to environment {slug!r}"
        )
    raise not_found(f"{t.name} {single.id} has no version assigned to environment {slug!r}")


def _check_locator(row: Row, locator: dict[str, Any]) -> None:
    """Views are addressed by (object_type, object_id) as well as by id."""
    if (
        locator.get("object_type") != row.body["object_type"]
        or locator.get("object_id") != row.body["object_id"]
    ):
        raise not_found(
            f"view {row.id} not found for {locator.get('object_type')} {locator.get('object_id')}"
        )


# --- patch --------------------------------------------------------------------------------------


def patch(ctx: Ctx, t: ObjectType) -> dict[str, Any]:
    id_ = ctx.path_id()
    body = ctx.body()
    row = get_row(ctx, t, id_)
    if row.org_id is None:
        raise forbidden(f"{t.name} {id_} is a system {t.name} and cannot be edited")
    permissions.require(permissions.needed(t.name, "update"), permissions.target_of(ctx.tx, row))
    if t.name == "view":
        _check_locator(row, body)
    pointer = spec.request_body_pointer(t.item_path, "patch") or ""
    schema = spec.resolve(pointer)
    schema = spec.resolve(schema["$ref"]) if "$ref" in schema else schema
    allowed = [k for k in schema.get("properties", {}) if k not in ("object_type", "object_id")]
    changes = {k: body[k] for k in allowed if body.get(k) is not None and k != t.secret_field}
    check_refs(ctx, t.refs, changes, row.org_id)
    new = _apply_patch(row.body, changes, t)
    secret = row.secret
    if t.secret_field and body.get(t.secret_field) is not None:
        secret = body[t.secret_field]
    patch_hook: PatchHook = PATCH_HOOKS.get(t.name, _no_patch_hook)
    patch_hook(ctx, t, new, row, secret, changes)
    new = ordered(t.schema, new)
    ident = ident_of(t.identity, new)
    if t.identity and ident != ident_of(t.identity, row.body):
        clash = None if t.name == "organization" else ctx.tx.find_ident(t.name, row.org_id, ident or "")
        if clash is None and t.include_global:  # a system role's name is taken in every org
            clash = ctx.tx.find_ident(t.name, None, ident or "")
        if clash is not None and clash.id != row.id:
            raise bad_request(f"another {t.name} with the same {', '.join(t.identity)} already exists")
    check_response(t.schema, new)
    row = ctx.tx.update(row, new, ident=ident if t.identity else None, secret=secret)
    if t.versioned:
        ctx.tx.add_version(row.id, new["_xact_id"], new)
    return row.body


# Patch fields that add to / remove from a list field instead of merging.
_DELTAS = {
    "add_member_permissions": ("member_permissions", True),
    "remove_member_permissions": ("member_permissions", False),
    "add_member_roles": ("member_roles", True),
    "remove_member_roles": ("member_roles", False),
    "add_member_users": ("member_users", True),
    "remove_member_users": ("member_users", False),
    "add_member_groups": ("member_groups", True),
    "remove_member_groups": ("member_groups", False),
}
# Patch fields replaced whole: "Patch operations replace all settings" (PatchProject.settings).
_REPLACED = {("project", "settings")}


def _apply_patch(current: dict[str, Any], changes: dict[str, Any], t: ObjectType) -> dict[str, Any]:
    new = dict(current)
    for key, value in changes.items():
        if key in _DELTAS:
            target, add = _DELTAS[key]
            items = list(new.get(target) or [])
            if target == "member_permissions":
                value = _unique_permissions(value)
            for item in value:
                if add and item not in items:
                    items.append(item)
                elif not add and item in items:
                    items.remove(item)
            new[target] = items
        elif (t.name, key) in _REPLACED:
            new[key] = value
        elif isinstance(value, dict):
            new[key] = deep_merge(current.get(key), value)
        else:
            new[key] = value
    return new


# --- delete -------------------------------------------------------------------------------------


def delete(ctx: Ctx, t: ObjectType) -> dict[str, Any]:
    id_ = ctx.path_id()
    if t.name == "view":
        locator = ctx.body()
        row = get_row(ctx, t, id_)
        _check_locator(row, locator)
    else:
        row = get_row(ctx, t, id_)
    return delete_row(ctx, t, row)


def delete_row(ctx: Ctx, t: ObjectType, row: Row) -> dict[str, Any]:
    if row.org_id is None:
        raise forbidden(f"{t.name} {row.id} is a system {t.name} and cannot be deleted")
    permissions.require(permissions.needed(t.name, "delete"), permissions.target_of(ctx.tx, row))
    body = dict(row.body)
    if "deleted_at" in spec.schema_properties(t.schema):
        body["deleted_at"] = ctx.now
    ctx.tx.mark_deleted(row, body)
    _cascade(ctx, row)
    if t.name in ("api_key", "service_token"):
        ctx.tx.drop_keys_of_object(row.id)
    return body


def _cascade(ctx: Ctx, parent: Row) -> None:
    """Soft-delete what cannot outlive ``parent`` and drop references to it."""
    children: list[Row] = []
    for child_type, field_name in CASCADES.get(parent.type, ()):
        children += ctx.tx.select(
            child_type,
            org_ids=[parent.org_id or ""],
            where=[f"json_extract(body, '$.{field_name}') = ?"],
            params=[parent.id],
        )
    for child_type in OBJECT_SCOPED:
        children += ctx.tx.select(
            child_type,
            org_ids=[parent.org_id or ""],
            where=["json_extract(body, '$.object_id') = ?"],
            params=[parent.id],
        )
    if parent.type in ("group", "role"):
        children += ctx.tx.select(
            "acl",
            org_ids=[parent.org_id or ""],
            where=[f"json_extract(body, '$.{parent.type}_id') = ?"],
            params=[parent.id],
        )
        _drop_member(ctx, parent.org_id or "", parent.type, f"member_{parent.type}s", parent.id)
    for child in children:
        if not ctx.tx.get(child.id):
            continue  # already removed through another path
        body = dict(child.body)
        if "deleted_at" in body:
            body["deleted_at"] = ctx.now
        ctx.tx.mark_deleted(child, body)
        _cascade(ctx, child)


def _drop_member(ctx: Ctx, org_id: str, type_: str, list_field: str, member_id: str) -> None:
    """Remove ``member_id`` from ``list_field`` of every ``type_`` in the org."""
    for row in ctx.tx.select(
        type_,
        org_ids=[org_id],
        where=[f"json_extract(body, '$.{list_field}') LIKE ?"],
        params=[f'%"{member_id}"%'],
    ):
        body = dict(row.body)
        body[list_field] = [m for m in body.get(list_field) or [] if m != member_id]
        ctx.tx.update(row, body, ident=ident_of(TYPES[type_].identity, body), secret=row.secret)


def add_group_member(ctx: Ctx, group: Row, user_id: str) -> None:
    current = ctx.tx.get(group.id, ["group"]) or group
    members = list(current.body.get("member_users") or [])
    if user_id not in members:
        body = {**current.body, "member_users": [*members, user_id]}
        ctx.tx.update(current, body, ident=ident_of(TYPES["group"].identity, body), secret=None)


def drop_user_from_org(ctx: Ctx, org_id: str, user_id: str) -> None:
    """What removing a member takes with it: group memberships and user ACLs in that org."""
    _drop_member(ctx, org_id, "group", "member_users", user_id)
    for acl in ctx.tx.select(
        "acl", org_ids=[org_id], where=["json_extract(body, '$.user_id') = ?"], params=[user_id]
    ):
        ctx.tx.mark_deleted(acl, acl.body)


# --- type hooks ---------------------------------------------------------------------------------

CreateHook = Callable[
    [Ctx, ObjectType, dict[str, Any], Row | None, str | None, dict[str, Any]], dict[str, Any]
]
PatchHook = Callable[[Ctx, ObjectType, dict[str, Any], Row, str | None, dict[str, Any]], None]


def _no_hook(*_: Any) -> dict[str, Any]:
    return {}


def _no_patch_hook(*_: Any) -> None:
    return None


def _preview(secret: str | None) -> str | None:
    """Like the hosted UI: never the secret, only a hint of its end."""
    if secret is None:
        return None
    return "********" + (secret[-4:] if len(secret) >= 12 else "")


def new_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "sk-" + "".join(secrets.choice(alphabet) for _ in range(48))


def key_preview(key: str) -> str:
    return f"sk-****{key[-4:]}"


def _position(ctx: Ctx, t: ObjectType, project_id: str) -> str:
    """A LexoRank-like sortable position, after every one ever given in the project."""
    count = ctx.tx.execute(
        "SELECT COUNT(*) FROM objects WHERE type = ? AND json_extract(body, '$.project_id') = ?",
        (t.name, project_id),
    ).fetchone()[0]
    return f"0|{100000 + count * 1000:06d}:"


def _hook_experiment(ctx: Ctx, t: ObjectType, new: dict[str, Any], *_: Any) -> dict[str, Any]:
    if new.get("public") is None:
        new["public"] = False
    new["commit"] = (new.get("repo_info") or {}).get("commit")
    return {}


def _hook_dataset(
    ctx: Ctx, t: ObjectType, new: dict[str, Any], existing: Row | None, *_: Any
) -> dict[str, Any]:
    if not new.get("url_slug"):
        new["url_slug"] = slugify(new["name"])
    return {}


def _hook_versioned(ctx: Ctx, t: ObjectType, new: dict[str, Any], *_: Any) -> dict[str, Any]:
    new["log_id"] = "p"
    new["_xact_id"] = ctx.tx.next_xact_id()
    return {}


def _hook_ranked(
    ctx: Ctx, t: ObjectType, new: dict[str, Any], existing: Row | None, *_: Any
) -> dict[str, Any]:
    if not new.get("position"):
        new["position"] = _position(ctx, t, new["project_id"])
    return {}


def _hook_acl(ctx: Ctx, t: ObjectType, new: dict[str, Any], *_: Any) -> dict[str, Any]:
    org_id = object_anchor(ctx, new["object_type"], new["object_id"])
    new["_object_org_id"] = org_id
    return {}


def _hook_ai_secret(
    ctx: Ctx, t: ObjectType, new: dict[str, Any], existing: Row | None, secret: str | None, *_: Any
) -> dict[str, Any]:
    new["updated_at"] = ctx.now
    new["preview_secret"] = _preview(secret)
    return {}


def _hook_api_key(ctx: Ctx, t: ObjectType, new: dict[str, Any], *_: Any) -> dict[str, Any]:
    key = new_key()
    user = ctx.tx.get(ctx.caller.user_id, ["user"])
    ub = user.body if user else {}
    new.update(
        preview_name=key_preview(key),
        user_id=ctx.caller.user_id,
        user_email=ub.get("email"),
        user_given_name=ub.get("given_name"),
        user_family_name=ub.get("family_name"),
    )
    ctx.tx.add_key(key, ctx.caller.user_id, [new["org_id"]], new["id"])
    return {"key": key}


def _hook_service_token(
    ctx: Ctx, t: ObjectType, new: dict[str, Any], existing: Row | None, *_: Any
) -> dict[str, Any]:
    account = ctx.tx.get(new["service_account_id"], ["user"])
    if account is None or not ctx.tx.is_service_account(account.id):
        raise bad_request(f"service_account_id: {new['service_account_id']} is not a service account")
    key = new_key()
    if existing is not None:
        ctx.tx.drop_keys_of_object(existing.id)  # replacing a token rotates its key
    new.update(
        preview_name=key_preview(key),
        service_account_email=account.body.get("email"),
        service_account_name=account.body.get("given_name"),
    )
    ctx.tx.add_key(key, account.id, [new["org_id"]], new["id"])
    return {"key": key}


def _hook_role(ctx: Ctx, t: ObjectType, new: dict[str, Any], *_: Any) -> dict[str, Any]:
    if new.get("member_permissions") is not None:
        new["member_permissions"] = _unique_permissions(new["member_permissions"])
    return {}


def _unique_permissions(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        norm = {"permission": item["permission"], "restrict_object_type": item.get("restrict_object_type")}
        if norm not in out:
            out.append(norm)
    return out


def _patch_experiment(ctx: Ctx, t: ObjectType, new: dict[str, Any], *_: Any) -> None:
    new["commit"] = (new.get("repo_info") or {}).get("commit")


def _patch_versioned(ctx: Ctx, t: ObjectType, new: dict[str, Any], *_: Any) -> None:
    new["_xact_id"] = ctx.tx.next_xact_id()


def _patch_ai_secret(
    ctx: Ctx, t: ObjectType, new: dict[str, Any], row: Row, secret: str | None, *_: Any
) -> None:
    new["updated_at"] = ctx.now
    new["preview_secret"] = _preview(secret)


def _patch_group(ctx: Ctx, t: ObjectType, new: dict[str, Any], row: Row, *_: Any) -> None:
    if row.id in (new.get("member_groups") or []):
        raise bad_request("add_member_groups: a group cannot inherit from itself")


def _patch_role(ctx: Ctx, t: ObjectType, new: dict[str, Any], row: Row, *_: Any) -> None:
    if row.id in (new.get("member_roles") or []):
        raise bad_request("add_member_roles: a role cannot inherit from itself")


def _patch_organization(ctx: Ctx, t: ObjectType, new: dict[str, Any], row: Row, *_: Any) -> None:
    clash = ctx.tx.find_ident_anywhere("organization", ident_of(("name",), new) or "")
    if clash is not None and clash.id != row.id:
        raise bad_request(f"name: an organization named {new['name']!r} already exists")


CREATE_HOOKS: dict[str, CreateHook] = {
    "experiment": _hook_experiment,
    "dataset": _hook_dataset,
    "prompt": _hook_versioned,
    "function": _hook_versioned,
    "project_score": _hook_ranked,
    "project_tag": _hook_ranked,
    "acl": _hook_acl,
    "role": _hook_role,
    "ai_secret": _hook_ai_secret,
    "api_key": _hook_api_key,
    "service_token": _hook_service_token,
}
PATCH_HOOKS: dict[str, PatchHook] = {
    "experiment": _patch_experiment,
    "prompt": _patch_versioned,
    "function": _patch_versioned,
    "ai_secret": _patch_ai_secret,
    "group": _patch_group,
    "role": _patch_role,
    "organization": _patch_organization,
}
