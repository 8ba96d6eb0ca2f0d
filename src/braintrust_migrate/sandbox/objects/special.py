"""Endpoints that do not fit the generic CRUD shape.

* ``GET /v1/acl/list_org`` (a bare array), ``POST /v1/acl/batch_update``, ``DELETE /v1/acl``;
* ``PATCH /v1/organization/members`` (the only way users join an org);
* ``DELETE /v1/ai_secret`` and ``DELETE /v1/service_token`` (delete by body).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from braintrust_migrate.sandbox.core import permissions
from braintrust_migrate.sandbox.core.common import (
    Ctx,
    bad_request,
    check_refs,
    forbidden,
    ident_of,
    new_id,
    not_found,
    null_defaults,
    object_anchor,
    ordered,
    single_org,
    visible,
)
from braintrust_migrate.sandbox.core.store import Row, Tx
from braintrust_migrate.sandbox.objects import handlers
from braintrust_migrate.sandbox.objects.model import TYPES

ACL = TYPES["acl"]


# --- ACLs ---------------------------------------------------------------------------------------


# /v1/acl/list_org lists the same rows as /v1/acl, with this endpoint's own parameter set.
_LIST_ORG = dataclasses.replace(ACL, base="/v1/acl/list_org")


def acl_list_org(ctx: Ctx) -> list[dict[str, Any]]:
    """Every ACL of the org (filters optional); the spec returns a bare array here."""
    return [r.body for r in handlers.list_rows(ctx, _LIST_ORG, ctx.query())]


def _find_acl(ctx: Ctx, item: dict[str, Any]) -> tuple[str, Row | None]:
    org_id = object_anchor(ctx, item["object_type"], item["object_id"])
    fields = {k: item.get(k) for k in ACL.identity}
    return org_id, ctx.tx.find_ident("acl", org_id, ident_of(ACL.identity, fields) or "")


def _add_acl(ctx: Ctx, item: dict[str, Any]) -> tuple[Row, bool]:
    org_id, existing = _find_acl(ctx, item)
    target = permissions.attached_target(ctx.tx, item["object_type"], item["object_id"], org_id)
    permissions.require("create_acls", target)
    if existing is not None:
        return existing, False
    fields = {k: item[k] for k in ACL.settable if item.get(k) is not None}
    check_refs(ctx, ACL.refs, fields, org_id)
    handlers.validate_semantics(ACL, fields)
    body = ordered(
        "Acl",
        {**null_defaults("Acl"), **fields, "id": new_id(), "_object_org_id": org_id, "created": ctx.now},
    )
    return ctx.tx.insert("acl", org_id, body, ident=ident_of(ACL.identity, body)), True


def acl_delete_by_body(ctx: Ctx) -> dict[str, Any]:
    item = ctx.body()
    _, row = _find_acl(ctx, item)
    if row is None:
        raise not_found("No acl matches the given contents")
    return handlers.delete_row(ctx, ACL, row)


def acl_batch_update(ctx: Ctx) -> dict[str, Any]:
    """Idempotent: adding existing ACLs or removing missing ones has no effect.

    ``added_acls`` / ``removed_acls`` list only the ACLs this call actually added / removed.
    """
    body = ctx.body()
    added, removed = [], []
    for item in body.get("add_acls") or []:
        row, created = _add_acl(ctx, item)
        if created:
            added.append(row.body)
    for item in body.get("remove_acls") or []:
        _, found = _find_acl(ctx, item)
        if found is not None:
            removed.append(handlers.delete_row(ctx, ACL, found))
    return {"added_acls": added, "removed_acls": removed}


# --- organization members -----------------------------------------------------------------------


def patch_org_members(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body()
    if body.get("org_id") is not None:
        org_id = body["org_id"]
        if org_id not in ctx.caller.org_ids:
            raise forbidden(f"org_id: this API key has no access to organization {org_id}")
        if body.get("org_name") is not None and single_org(ctx, body["org_name"]) != org_id:
            raise bad_request("org_id and org_name name different organizations")
    else:
        org_id = single_org(ctx, body.get("org_name"))
    # "Manage members" is an access-control right: Engineers lack it, as on braintrust.dev.
    permissions.require("update_acls", permissions.Target("organization", org_id, None, org_id))
    invite = body.get("invite_users") or {}
    remove = body.get("remove_users") or {}
    groups = _invite_groups(ctx, org_id, invite)
    added: list[dict[str, Any]] = []

    for user_id in invite.get("ids") or []:
        user = ctx.tx.get(user_id, ["user"])
        # By id only users the org has known; others answer like unknown ids (no email leak).
        if user is None or not ctx.tx.knows_user(org_id, user_id):
            raise bad_request(f"invite_users.ids: no user with id {user_id}")
        if ctx.tx.add_member(org_id, user_id):
            added.append(
                {"id": user_id, "email": user.body.get("email"), "api_key": None, "token_name": None}
            )
    for email in invite.get("emails") or []:
        user = ensure_user(ctx.tx, ctx.now, email)
        if ctx.tx.add_member(org_id, user.id):
            added.append(
                {"id": user.id, "email": user.body.get("email"), "api_key": None, "token_name": None}
            )
    for account in invite.get("service_accounts") or []:
        added.append(_create_service_account(ctx, org_id, account))
    for entry in added:
        for group in groups:
            handlers.add_group_member(ctx, group, entry["id"])

    for user_id in remove.get("ids") or []:
        _remove(ctx, org_id, user_id)
    for email in remove.get("emails") or []:
        user = ctx.tx.find_ident("user", None, ident_of(("email",), {"email": email.lower()}) or "")
        if user is not None:
            _remove(ctx, org_id, user.id)
    return {"status": "success", "org_id": org_id, "send_email_error": None, "added_users": added}


def ensure_user(
    tx: Tx, now: str, email: str, given_name: str | None = None, family_name: str | None = None
) -> Row:
    """The global user with this email, created (like an invitation does) if new."""
    ident = ident_of(("email",), {"email": email.lower()}) or ""
    user = tx.find_ident("user", None, ident)
    if user is not None:
        return user
    body = {
        "id": new_id(),
        "given_name": given_name,
        "family_name": family_name,
        "email": email,
        "avatar_url": None,
        "created": now,
        "last_active_at": None,
    }
    return tx.insert("user", None, body, ident=ident)


def _invite_groups(ctx: Ctx, org_id: str, invite: dict[str, Any]) -> list[Row]:
    groups: list[Row] = []
    for group_id in [
        *(invite.get("group_ids") or []),
        *([invite["group_id"]] if invite.get("group_id") else []),
    ]:
        row = ctx.tx.get(group_id, ["group"])
        if row is None or row.org_id != org_id:
            raise bad_request(f"invite_users.group_ids: no group {group_id} in this organization")
        groups.append(row)
    names = [
        *(invite.get("group_names") or []),
        *([invite["group_name"]] if invite.get("group_name") else []),
    ]
    for name in names:
        row = ctx.tx.find_ident("group", org_id, ident_of(("name",), {"name": name}) or "")
        if row is None:
            raise bad_request(f"invite_users.group_names: no group named {name!r} in this organization")
        groups.append(row)
    return groups


def _create_service_account(ctx: Ctx, org_id: str, account: dict[str, Any]) -> dict[str, Any]:
    """A service account is a user without an email; with ``token_name`` it also gets a token."""
    body = {
        "id": new_id(),
        "given_name": account["name"],
        "family_name": None,
        "email": None,
        "avatar_url": None,
        "created": ctx.now,
        "last_active_at": None,
    }
    user = ctx.tx.insert("user", None, body, ident=None)
    ctx.tx.add_service_account(user.id, org_id)
    ctx.tx.add_member(org_id, user.id)
    key = None
    token_name = account.get("token_name")
    if token_name:
        token = {
            "id": new_id(),
            "created": ctx.now,
            "name": token_name,
            "preview_name": "",
            "service_account_id": user.id,
            "service_account_email": None,
            "service_account_name": account["name"],
            "org_id": org_id,
        }
        key = handlers.new_key()
        token["preview_name"] = handlers.key_preview(key)
        ctx.tx.insert("service_token", org_id, token, ident=ident_of(("name",), token))
        ctx.tx.add_key(key, user.id, [org_id], token["id"])
    return {"id": user.id, "email": None, "api_key": key, "token_name": token_name}


def _remove(ctx: Ctx, org_id: str, user_id: str) -> None:
    if user_id == ctx.caller.user_id:
        raise bad_request("remove_users: you cannot remove the user that owns this API key")
    if ctx.tx.remove_member(org_id, user_id):
        handlers.drop_user_from_org(ctx, org_id, user_id)


# --- delete by body -----------------------------------------------------------------------------


def ai_secret_delete_by_body(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body()
    org_id = single_org(ctx, body.get("org_name"))
    row = ctx.tx.find_ident("ai_secret", org_id, ident_of(("name",), body) or "")
    if row is None:
        raise not_found(f"No ai_secret named {body['name']!r}")
    return handlers.delete_row(ctx, TYPES["ai_secret"], row)


def service_token_delete_by_body(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body()
    row = visible(ctx, ("service_token",), body["id"], label="service_token")
    return handlers.delete_row(ctx, TYPES["service_token"], row)
