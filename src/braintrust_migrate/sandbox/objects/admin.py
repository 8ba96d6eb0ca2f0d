"""Provisioning: system roles, orgs with their users / built-in groups / API key, key grants.

The hosted API cannot create orgs or users, so the sandbox does it out of band:
through :class:`~braintrust_migrate.sandbox.server.SandboxServer` in-process, or
through the admin HTTP API (``/_sandbox/...``, guarded by the ``X-Sandbox-Admin-Key``
header) from another process.

What a new org looks like (as on braintrust.dev, where "every organization starts
with three permission groups"):

* members: by default 3 deterministic users; the first, Alice, is in every org (the
  same person, one global user id), the other two are picked from a small pool by a
  hash of the org name, so two orgs usually share one or two users by email;
* groups ``Owners`` (first user), ``Engineers`` (the others) and ``Viewers`` (empty),
  each granted the matching system role on the organization through an ACL;
* one API key named ``sandbox`` owned by the first user.

System roles (``org_id: null``) are global, with fixed ids: Owner (every permission),
Engineer (create/read/update/delete), Viewer (read).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from braintrust_migrate.sandbox.core import permissions
from braintrust_migrate.sandbox.core.common import ident_of, new_id, now_iso
from braintrust_migrate.sandbox.core.references import OBJECT_ID_TARGETS
from braintrust_migrate.sandbox.core.store import Store, Tx
from braintrust_migrate.sandbox.objects.handlers import key_preview, new_key
from braintrust_migrate.sandbox.objects.special import ensure_user

_NAMESPACE = uuid.UUID("6f1d7c52-3a44-4a53-9a0e-5b8f2f1f0c11")
ALL_PERMISSIONS = (
    "create",
    "read",
    "update",
    "delete",
    "create_acls",
    "read_acls",
    "update_acls",
    "delete_acls",
)
SYSTEM_ROLES: dict[str, tuple[str, ...]] = {
    "Owner": ALL_PERMISSIONS,
    "Engineer": ("create", "read", "update", "delete"),
    "Viewer": ("read",),
}
BUILTIN_GROUPS = (("Owners", "Owner"), ("Engineers", "Engineer"), ("Viewers", "Viewer"))
PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("alice.nguyen@example.com", "Alice", "Nguyen"),
    ("bob.martin@example.com", "Bob", "Martin"),
    ("carol.smith@example.com", "Carol", "Smith"),
    ("dan.okafor@example.com", "Dan", "Okafor"),
    ("eve.rossi@example.com", "Eve", "Rossi"),
    ("frank.li@example.com", "Frank", "Li"),
)
_SYSTEM_CREATED = "2024-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class SandboxOrg:
    name: str
    id: str
    api_key: str
    user_id: str  # the user the API key belongs to


@dataclass(frozen=True)
class RestrictedKey:
    """A key whose user's rights come from ACLs (``role``: owner/engineer/viewer or "restricted")."""

    org_name: str
    org_id: str
    api_key: str
    user_id: str
    role: str


_ACL_IDENTITY = (
    "object_type",
    "object_id",
    "user_id",
    "group_id",
    "permission",
    "restrict_object_type",
    "role_id",
)


def system_role_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"system-role:{name}"))


def ensure_system_roles(tx: Tx) -> None:
    for name, perms in SYSTEM_ROLES.items():
        role_id = system_role_id(name)
        if tx.get(role_id, include_deleted=True) is not None:
            continue
        body = {
            "id": role_id,
            "org_id": None,
            "user_id": None,
            "created": _SYSTEM_CREATED,
            "name": name,
            "description": f"Built-in {name} role",
            "deleted_at": None,
            "member_permissions": [{"permission": p, "restrict_object_type": None} for p in perms],
            "member_roles": [],
        }
        tx.insert("role", None, body, ident=ident_of(("name",), body))


def default_users(org_name: str) -> list[str]:
    """Alice plus two people picked deterministically from the pool by the org name."""
    digest = hashlib.sha256(org_name.encode()).digest()
    others = list(PEOPLE[1:])
    first = others.pop(digest[0] % len(others))
    second = others[digest[1] % len(others)]
    return [PEOPLE[0][0], first[0], second[0]]


def _person(email: str) -> tuple[str | None, str | None]:
    for known, given, family in PEOPLE:
        if known == email.lower():
            return given, family
    local = email.split("@", 1)[0]
    parts = [p.capitalize() for p in local.replace("_", ".").split(".") if p]
    return (parts[0] if parts else None), (" ".join(parts[1:]) or None)


def create_org(
    store: Store,
    name: str,
    api_key: str | None = None,
    users: Sequence[str] | None = None,
    *,
    builtins: bool = True,
) -> SandboxOrg:
    """Create an org with members, built-in groups and an API key (see module docstring)."""
    if not name:
        raise ValueError("an org needs a name")
    with store.transaction() as tx:
        ensure_system_roles(tx)
        if tx.find_ident_anywhere("organization", ident_of(("name",), {"name": name}) or "") is not None:
            raise ValueError(f"an organization named {name!r} already exists")
        if api_key is not None and tx.key_exists(api_key):
            raise ValueError("that API key is already in use (use grant_org to give it another org)")
        now = now_iso()
        org_id = new_id()
        org: dict[str, str | None] = {
            "id": org_id,
            "name": name,
            "api_url": None,
            "is_universal_api": None,
            "is_dataplane_private": None,
            "proxy_url": None,
            "realtime_url": None,
            "created": now,
            "image_rendering_mode": None,
        }
        tx.insert("organization", org_id, org, ident=ident_of(("name",), org))
        emails = list(default_users(name) if users is None else users)
        members = [ensure_user(tx, now, email, *_person(email)) for email in emails]
        if not members:  # the key needs an owner
            members = [ensure_user(tx, now, f"owner@{_slug(name)}.sandbox.invalid", "Sandbox", "Owner")]
        for user in members:
            tx.add_member(org_id, user.id)
        owner = members[0].id
        if builtins:
            _builtin_groups(tx, org_id, owner, [u.id for u in members], now)
        key = api_key or new_key()
        _add_key_object(tx, org_id, owner, key, "sandbox", now)
        return SandboxOrg(name, org_id, key, owner)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "org"


def _builtin_groups(tx: Tx, org_id: str, owner: str, members: list[str], now: str) -> None:
    for group_name, role_name in BUILTIN_GROUPS:
        member_users = {"Owners": members[:1], "Engineers": members[1:], "Viewers": []}[group_name]
        group = {
            "id": new_id(),
            "org_id": org_id,
            "user_id": owner,
            "created": now,
            "name": group_name,
            "description": f"Built-in {group_name.lower()} group",
            "deleted_at": None,
            "member_users": member_users,
            "member_groups": [],
        }
        tx.insert("group", org_id, group, ident=ident_of(("name",), group))
        _insert_acl(
            tx, org_id, "organization", org_id, None, str(group["id"]), None, system_role_id(role_name), now
        )


def _add_key_object(tx: Tx, org_id: str, user_id: str, key: str, name: str, now: str) -> None:
    user = tx.get(user_id, ["user"])
    ub = user.body if user else {}
    body = {
        "id": new_id(),
        "created": now,
        "name": name,
        "preview_name": key_preview(key),
        "user_id": user_id,
        "user_email": ub.get("email"),
        "user_given_name": ub.get("given_name"),
        "user_family_name": ub.get("family_name"),
        "org_id": org_id,
    }
    tx.insert("api_key", org_id, body, ident=None)
    tx.add_key(key, user_id, [org_id], body["id"])


def grant_org(store: Store, api_key: str, org_name: str) -> None:
    """Let ``api_key`` act in ``org_name`` too (its user joins that org)."""
    with store.transaction() as tx:
        info = tx.key_info(api_key)
        if info is None:
            raise ValueError("unknown API key")
        org = tx.find_ident_anywhere("organization", ident_of(("name",), {"name": org_name}) or "")
        if org is None:
            raise ValueError(f"no organization named {org_name!r}")
        tx.grant_key(api_key, org.id)
        tx.add_member(org.id, info.user_id)


def add_org_key(store: Store, org_name: str, api_key: str) -> None:
    """Give an existing org another API key (owned by the user of its first key)."""
    with store.transaction() as tx:
        org = tx.find_ident_anywhere("organization", ident_of(("name",), {"name": org_name}) or "")
        if org is None:
            raise ValueError(f"no organization named {org_name!r}")
        if tx.key_exists(api_key):
            raise ValueError("that API key is already in use")
        keys = tx.keys_of_org(org.id)
        info = tx.key_info(keys[0]) if keys else None
        owner = info.user_id if info else None
        if owner is None:
            members = [
                r[0] for r in tx.execute("SELECT user_id FROM memberships WHERE org_id = ?", (org.id,))
            ]
            if not members:
                raise ValueError(f"organization {org_name!r} has no member to own a key")
            owner = members[0]
        _add_key_object(tx, org.id, owner, api_key, "sandbox", now_iso())


ROLES = {"owner": "Owner", "engineer": "Engineer", "viewer": "Viewer"}


def create_key(
    store: Store,
    org_name: str,
    *,
    role: str | None = None,
    grants: Sequence[dict[str, Any]] | None = None,
    api_key: str | None = None,
    email: str | None = None,
) -> RestrictedKey:
    """A key for a new member whose rights come from ACLs only (see ``core/permissions.py``).

    ``role`` (owner / engineer / viewer) puts the user in the matching built-in group (or, in an
    org without them, grants the system role on the org); ``grants`` adds user ACLs, each
    ``{"object_type", "object_id" (default: the org for "organization"), "permissions": [...],
    "restrict_object_type"}``. Neither: a member who may do nothing.
    """
    if role is not None and role.lower() not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    store.add_schema(permissions.SCHEMA)
    with store.transaction() as tx:
        org = tx.find_ident_anywhere("organization", ident_of(("name",), {"name": org_name}) or "")
        if org is None:
            raise ValueError(f"no organization named {org_name!r}")
        if api_key is not None and tx.key_exists(api_key):
            raise ValueError("that API key is already in use")
        now = now_iso()
        label = role.lower() if role else "restricted"
        address = email or f"{label}-{secrets.token_hex(4)}@{_slug(org_name)}.sandbox.invalid"
        user = ensure_user(tx, now, address, *_person(address))
        tx.add_member(org.id, user.id)
        permissions.govern(tx, org.id, user.id)
        if role is not None:
            _give_role(tx, org.id, user.id, ROLES[role.lower()], now)
        for grant in grants or ():
            _give_grant(tx, org.id, user.id, grant, now)
        key = api_key or new_key()
        _add_key_object(tx, org.id, user.id, key, label, now)
        return RestrictedKey(org_name, org.id, key, user.id, label)


def _give_role(tx: Tx, org_id: str, user_id: str, role_name: str, now: str) -> None:
    group_name = {"Owner": "Owners", "Engineer": "Engineers", "Viewer": "Viewers"}[role_name]
    group = tx.find_ident("group", org_id, ident_of(("name",), {"name": group_name}) or "")
    if group is not None:
        members = list(group.body.get("member_users") or [])
        body = {**group.body, "member_users": [*members, user_id]}
        tx.update(group, body, ident=ident_of(("name",), body), secret=None)
        return
    _insert_acl(tx, org_id, "organization", org_id, user_id, None, None, system_role_id(role_name), now)


def _give_grant(tx: Tx, org_id: str, user_id: str, grant: dict[str, Any], now: str) -> None:
    if not isinstance(grant, dict):
        raise ValueError("each grant must be a mapping with object_type and permissions")
    object_type = str(grant.get("object_type") or "")
    if object_type not in OBJECT_ID_TARGETS or object_type == "function":
        raise ValueError(f"grant object_type must be an ACL object type, got {object_type!r}")
    object_id = grant.get("object_id") or (org_id if object_type == "organization" else None)
    if not object_id:
        raise ValueError(f"a grant on {object_type} needs an object_id")
    perms = grant.get("permissions")
    if not isinstance(perms, list) or not perms or any(p not in permissions.PERMISSIONS for p in perms):
        raise ValueError(
            f"grant permissions must be a non-empty list of {', '.join(permissions.PERMISSIONS)}"
        )
    restrict = grant.get("restrict_object_type")
    for perm in perms:
        _insert_acl(tx, org_id, object_type, str(object_id), user_id, None, perm, None, now, restrict)


def _insert_acl(
    tx: Tx,
    org_id: str,
    object_type: str,
    object_id: str,
    user_id: str | None,
    group_id: str | None,
    permission: str | None,
    role_id: str | None,
    now: str,
    restrict: str | None = None,
) -> None:
    acl = {
        "id": new_id(),
        "object_type": object_type,
        "object_id": object_id,
        "user_id": user_id,
        "group_id": group_id,
        "permission": permission,
        "restrict_object_type": restrict,
        "role_id": role_id,
        "_object_org_id": org_id,
        "created": now,
    }
    tx.insert("acl", org_id, acl, ident=ident_of(_ACL_IDENTITY, acl))


def list_orgs(store: Store) -> list[SandboxOrg]:
    with store.transaction() as tx:
        out = []
        for org in tx.select("organization", org_ids=None):
            keys = tx.keys_of_org(org.id)
            info = tx.key_info(keys[0]) if keys else None
            out.append(
                SandboxOrg(org.body["name"], org.id, keys[0] if keys else "", info.user_id if info else "")
            )
        return out[::-1]


def new_admin_key() -> str:
    return "sandbox-admin-" + secrets.token_urlsafe(24)


def org_json(org: SandboxOrg) -> dict[str, Any]:
    return asdict(org)
