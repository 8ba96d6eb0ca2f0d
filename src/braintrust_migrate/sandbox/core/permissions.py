"""Who may do what: the one place the sandbox decides permissions.

The model is braintrust.dev's (docs: "Access control"; spec: ``Acl``, ``Role``, ``Permission``):

* permissions are ``create read update delete create_acls read_acls update_acls delete_acls``;
* an ACL grants a permission or a role (a set of permissions plus inherited roles) to a user or
  a group (whose users include those of its ``member_groups``) on an object;
* ACLs are inherited down the hierarchy and additive: on the organization they cover everything
  in it, on a project everything in that project, on an object that object;
  ``restrict_object_type`` narrows a grant to one object type.

Users provisioned as before (``--org NAME=KEY``, the orgs file, ``create_org``, invited members)
act as org owners whatever the ACLs say, so existing setups behave exactly as they did. Users made
by :func:`govern` (restricted keys) get exactly what the org's ACLs give them.

Handlers never test permissions themselves: the resolvers every request goes through
(``visible``, lists, creates, event containers) ask :func:`require` / :func:`readable`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from braintrust_migrate.sandbox.core.errors import ApiError
from braintrust_migrate.sandbox.core.store import KeyInfo, Row, Tx

PERMISSIONS = ("create", "read", "update", "delete", "create_acls", "read_acls", "update_acls", "delete_acls")
SCHEMA = """
CREATE TABLE IF NOT EXISTS acl_governed (
    org_id  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
"""
# The AclObjectType a sandbox type is checked as (for restrict_object_type and messages).
_ACL_TYPE = {
    "organization": "organization",
    "project": "project",
    "experiment": "experiment",
    "dataset": "dataset",
    "dataset_snapshot": "dataset",
    "prompt": "prompt",
    "function": "prompt",
    "group": "group",
    "role": "role",
    "user": "org_member",
}
# Writes of these types manage access, so they need the *_acls permissions (Engineers lack them).
_ACCESS_TYPES = frozenset({"acl", "group", "role"})
_ACL_PERM = {"create": "create_acls", "update": "update_acls", "delete": "delete_acls", "read": "read"}


@dataclass(frozen=True)
class Target:
    """What a permission is checked on: an object (or a new one) within a project and org."""

    acl_type: str
    object_id: str | None
    project_id: str | None
    org_id: str

    def describe(self) -> str:
        if self.object_id is None:
            where = f"project {self.project_id}" if self.project_id else f"organization {self.org_id}"
            return f"a new {self.acl_type} in {where}"
        return f"{self.acl_type} {self.object_id}"


@dataclass(frozen=True)
class _Grant:
    object_type: str
    object_id: str
    permission: str
    restrict: str | None


@dataclass
class _Caller:
    tx: Tx
    key: KeyInfo
    writing: bool
    cache: dict[str, list[_Grant] | None]


_current: ContextVar[_Caller | None] = ContextVar("sandbox_caller", default=None)


@contextmanager
def acting(tx: Tx, key: KeyInfo, *, writing: bool) -> Iterator[None]:
    """Make ``key`` the caller whose rights the checks of this request use (``writing``: not a read)."""
    token = _current.set(_Caller(tx, key, writing, {}))
    try:
        yield
    finally:
        _current.reset(token)


def govern(tx: Tx, org_id: str, user_id: str) -> None:
    """From now on this user's rights in the org come from its ACLs only (a restricted user)."""
    tx.execute("INSERT OR IGNORE INTO acl_governed (org_id, user_id) VALUES (?, ?)", (org_id, user_id))


# --- targets ------------------------------------------------------------------------------------


def target_of(tx: Tx, row: Row) -> Target:
    """Where ``row`` sits in the hierarchy (an ACL / view / env_var: the object it is attached to)."""
    body, org_id = row.body, row.org_id or ""
    if row.type == "organization":
        return Target("organization", row.id, None, row.id)
    if row.type == "project":
        return Target("project", row.id, row.id, org_id)
    if "object_type" in body and "object_id" in body and row.type in ("acl", "view", "env_var"):
        return attached_target(tx, str(body["object_type"]), str(body["object_id"]), org_id)
    project_id = body.get("project_id")
    if row.type == "dataset_snapshot":
        dataset = tx.get(str(body.get("dataset_id")), ["dataset"], include_deleted=True)
        project_id = dataset.body.get("project_id") if dataset else None
    return Target(_ACL_TYPE.get(row.type, "organization"), row.id, project_id, org_id)


def attached_target(tx: Tx, object_type: str, object_id: str, org_id: str) -> Target:
    """The target an ACL (or view) on ``object_type`` / ``object_id`` is about."""
    if object_type in ("organization", "org_member", "org_project"):
        return Target("organization", org_id, None, org_id)
    row = tx.get(object_id)
    if row is None or row.type in ("acl", "view", "env_var"):
        return Target(object_type, object_id, None, org_id)
    return target_of(tx, row)


def new_target(type_name: str, org_id: str, project_id: str | None) -> Target:
    return Target(_ACL_TYPE.get(type_name, "organization"), None, project_id, org_id)


# --- decisions ----------------------------------------------------------------------------------


def needed(type_name: str, action: str) -> str:
    """The permission an action on an object of ``type_name`` needs."""
    return _ACL_PERM[action] if type_name in _ACCESS_TYPES else action


def restricted() -> bool:
    """Whether some org of the caller decides its rights by ACLs (lists must then filter)."""
    caller = _current.get()
    return caller is not None and any(_grants(caller, o) is not None for o in caller.key.org_ids)


def require_container(tx: Tx, row: Row, logs: bool) -> None:
    """Event rows: reading needs read on their object, writing them needs update."""
    caller = _current.get()
    target = target_of(tx, row)
    if logs:
        target = Target("project_log", target.object_id, target.project_id, target.org_id)
    require("update" if caller is not None and caller.writing else "read", target)


def allowed(permission: str, target: Target) -> bool:
    caller = _current.get()
    if caller is None:
        return True  # provisioning, not a request
    grants = _grants(caller, target.org_id)
    if grants is None:
        return True  # an owner
    return any(_covers(g, permission, target) for g in grants)


def require(permission: str, target: Target) -> None:
    if not allowed(permission, target):
        raise ApiError(
            403,
            f"You do not have permission to perform this request: missing '{permission}' permission on "
            f"{target.describe()}",
        )


def readable(tx: Tx, row: Row) -> bool:
    """Whether the caller may read ``row`` (lists leave out what it may not)."""
    caller = _current.get()
    if caller is None or _grants(caller, row.org_id or "") is None:
        return True  # an owner: no need to place the row in the hierarchy
    if row.type == "acl":
        return allowed("read_acls", target_of(tx, row))
    if row.type in ("organization", "user") or row.org_id is None:
        return True  # every member sees its org, its members and the system roles
    return allowed("read", target_of(tx, row))


def _covers(grant: _Grant, permission: str, target: Target) -> bool:
    if grant.permission != permission:
        return False
    if grant.restrict is not None and grant.restrict != target.acl_type:
        return False
    if grant.object_type == "organization":
        return grant.object_id == target.org_id
    if grant.object_type in ("project", "project_log") and grant.object_id == target.project_id:
        return True
    return target.object_id is not None and grant.object_id == target.object_id


def _grants(caller: _Caller, org_id: str) -> list[_Grant] | None:
    """The caller's grants in ``org_id``; None for an owner (everything allowed)."""
    if org_id in caller.cache:
        return caller.cache[org_id]
    tx, user_id = caller.tx, caller.key.user_id
    governed = tx.execute(
        "SELECT 1 FROM acl_governed WHERE org_id = ? AND user_id = ?", (org_id, user_id)
    ).fetchone()
    if governed is None or not tx.is_member(org_id, user_id):
        result: list[_Grant] | None = None if governed is None else []
        caller.cache[org_id] = result
        return result
    groups = _groups_of(tx, org_id, user_id)
    out: list[_Grant] = []
    for acl in tx.select("acl", org_ids=[org_id]):
        b = acl.body
        if b.get("user_id") != user_id and b.get("group_id") not in groups:
            continue
        obj_type, obj_id = str(b["object_type"]), str(b["object_id"])
        if b.get("permission"):
            out.append(_Grant(obj_type, obj_id, b["permission"], b.get("restrict_object_type")))
        elif b.get("role_id"):
            out += [_Grant(obj_type, obj_id, p, r) for p, r in _role_permissions(tx, str(b["role_id"]))]
    caller.cache[org_id] = out
    return out


def _groups_of(tx: Tx, org_id: str, user_id: str) -> set[str]:
    """Groups the user is in: directly, or through a group that inherits from (includes) another."""
    rows = tx.select("group", org_ids=[org_id])
    inside = {r.id for r in rows if user_id in (r.body.get("member_users") or [])}
    grew = True
    while grew:
        more = {r.id for r in rows if r.id not in inside and inside & set(r.body.get("member_groups") or [])}
        inside |= more
        grew = bool(more)
    return inside


def _role_permissions(tx: Tx, role_id: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    todo = [role_id]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        role = tx.get(current, ["role"])
        if role is None:
            continue
        body: dict[str, Any] = role.body
        out += [
            (p["permission"], p.get("restrict_object_type")) for p in body.get("member_permissions") or []
        ]
        todo += list(body.get("member_roles") or [])
    return out
