"""Users cannot be created through the API: map them between orgs by email."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.client import ApiClient
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.source import Source

log = get_logger(__name__)


@dataclass
class UserMap:
    enabled: bool
    source_emails: dict[str, str] = field(default_factory=dict)  # source user id -> email
    dest_ids: dict[str, str] = field(default_factory=dict)  # lower-cased email -> dest user id
    invited: list[str] = field(default_factory=list)

    def dest_id(self, src_user_id: str) -> str | None:
        if not self.enabled:
            return None
        email = self.source_emails.get(src_user_id)
        return self.dest_ids.get(email.lower()) if email else None

    def email(self, src_user_id: str) -> str | None:
        return self.source_emails.get(src_user_id)

    def unmapped_emails(self) -> list[str]:
        return sorted(e for e in self.source_emails.values() if e and e.lower() not in self.dest_ids)


async def build_user_map(
    source: Source,
    dest: ApiClient,
    dest_view: Source,
    *,
    enabled: bool,
    invite: bool,
    dry_run: bool,
    source_org: str | None,
    dest_org: str | None,
) -> UserMap:
    users = UserMap(enabled=enabled)
    if enabled:  # both sides at once
        source_users, dest_users = await asyncio.gather(source.users(source_org), dest_view.users(dest_org))
    else:
        source_users, dest_users = await source.users(source_org), []
    for user in source_users:
        if user.get("email"):
            users.source_emails[user["id"]] = user["email"]
    if not enabled:
        return users
    users.dest_ids = {u["email"].lower(): u["id"] for u in dest_users if u.get("email")}
    missing = users.unmapped_emails()
    if invite and missing and not dry_run:
        body: dict[str, Any] = {"invite_users": {"emails": missing, "send_invite_emails": False}}
        if dest_org:
            body["org_name"] = dest_org
        await dest.patch_json("/v1/organization/members", body)
        users.invited = missing
        log.info("invited users into the destination org", count=len(missing))
        users.dest_ids = {
            u["email"].lower(): u["id"] for u in await dest_view.users(dest_org) if u.get("email")
        }
    return users
