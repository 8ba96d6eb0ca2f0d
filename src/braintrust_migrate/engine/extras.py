"""The two steps that are not plain objects: project settings (PATCH-only, pointing at
objects created later) and ACLs (identified by their whole content, created in batches)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from braintrust_migrate.client import ApiError
from braintrust_migrate.engine.apply import decide, translate
from braintrust_migrate.engine.checksum import checksum
from braintrust_migrate.engine.context import RunContext
from braintrust_migrate.engine.graph import Node
from braintrust_migrate.engine.refs import POLYMORPHIC_KINDS
from braintrust_migrate.engine.report import Outcome
from braintrust_migrate.engine.resources import BY_NAME, ResourceType

log = structlog.get_logger(__name__)

SETTINGS = ResourceType(
    "project_settings", "project", "/v1/project", "org", ("name",), ("settings",), update="patch"
)
ACL_FIELDS = (
    "object_type",
    "object_id",
    "user_id",
    "group_id",
    "permission",
    "restrict_object_type",
    "role_id",
)
ACL_BATCH = 100


async def migrate_settings(ctx: RunContext, project: Node) -> Outcome | None:
    """PATCH a project's settings once everything they point at exists (PATCH replaces them whole)."""
    if not project.src.get("settings"):
        return None
    node = Node(SETTINGS, project.src, project.name, None)
    outcome = Outcome(
        "project_settings", "project_settings", project.name, project.src["id"], "failed", project.name
    )
    started = time.perf_counter()
    dest_id = ctx.known.get(project.key)
    dest = ctx.dst_inv.get("project", dest_id) if dest_id else None
    if dest is None and not ctx.options.dry_run:
        outcome.action, outcome.reason = "skipped", "project_not_migrated"
        return outcome
    try:
        tr = await translate(ctx, node, final=True)
        outcome.unresolved, outcome.notes = tr.unresolved, tr.notes
        src_sum = checksum(tr.body)
        current = {"settings": (dest or {}).get("settings")}
        mapping = ctx.state.mapping("project_settings", project.src["id"])
        if dest is None:
            outcome.action = "created"
        else:
            outcome.action, outcome.reason, outcome.differing_fields = decide(
                ctx, mapping, src_sum, tr.body, current, current
            )
            if not current["settings"] and outcome.action == "conflict":
                outcome.action, outcome.reason = "updated", None  # nothing there to overwrite
        outcome.dest_id = dest_id
        if outcome.action == "unchanged" and dest is not None and not ctx.options.dry_run:
            ctx.state.record_mapping(
                "project_settings", project.src["id"], dest["id"], src_sum, checksum(current)
            )
        if outcome.action in ("created", "updated") and not ctx.options.dry_run and dest is not None:
            written = await ctx.dest.patch_json(f"/v1/project/{dest['id']}", tr.body)
            ctx.dst_inv.add(BY_NAME["projects"], written)
            ctx.state.record_mapping(
                "project_settings",
                project.src["id"],
                dest["id"],
                src_sum,
                checksum({"settings": written.get("settings")}),
            )
    except ApiError as error:
        outcome.action, outcome.reason, outcome.error = "failed", "api_error", error.to_dict()
    outcome.duration_ms = round((time.perf_counter() - started) * 1000, 1)
    return outcome


def acl_key(acl: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(acl.get(name) for name in ACL_FIELDS)


async def _translate_acl(ctx: RunContext, acl: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    kind = POLYMORPHIC_KINDS.get(acl.get("object_type", ""))
    if kind is None:
        return None, "object_type_not_migratable"
    item: dict[str, Any] = {k: acl[k] for k in ACL_FIELDS if acl.get(k) is not None}
    object_id = ctx.peek(kind, acl["object_id"])
    if not object_id:
        return None, "object_not_migrated"
    item["object_id"] = object_id
    if acl.get("user_id"):
        user = ctx.users.dest_id(acl["user_id"])
        if not user:
            return None, "user_not_mapped" if ctx.users.enabled else "user_mapping_disabled"
        item["user_id"] = user
    if acl.get("group_id"):
        group = ctx.peek("group", acl["group_id"])
        if not group:
            return None, "group_not_migrated"
        item["group_id"] = group
    if acl.get("role_id"):
        role = ctx.peek("role", acl["role_id"])
        if not role:
            return None, "role_not_migrated"
        item["role_id"] = role
    return item, None


def _acl_name(acl: dict[str, Any]) -> str:
    who = f"user:{acl['user_id']}" if acl.get("user_id") else f"group:{acl.get('group_id')}"
    grant = acl.get("permission") or f"role:{acl.get('role_id')}"
    return f"{acl.get('object_type')}:{acl.get('object_id')} {who} {grant}"


async def migrate_acls(ctx: RunContext) -> None:
    params = {"org_name": ctx.source_org_name}
    source_acls = await ctx.source.list_all("/v1/acl/list_org", params)
    dest_acls = await ctx.dest.list_all("/v1/acl/list_org", {"org_name": ctx.dest_org_name})
    existing = {acl_key(acl): acl for acl in dest_acls}
    pending: list[tuple[dict[str, Any], dict[str, Any], Outcome]] = []
    for acl in source_acls:
        outcome = Outcome("acls", "acl", _acl_name(acl), acl["id"], "skipped")
        item, reason = await _translate_acl(ctx, acl)
        if item is None:
            outcome.reason = reason
            if reason == "user_not_mapped":
                outcome.notes.append(f"user {ctx.users.email(acl['user_id']) or acl['user_id']}")
            ctx.record(outcome)
            continue
        found = existing.get(acl_key(item))
        if found is not None:
            outcome.action, outcome.dest_id = "unchanged", found["id"]
            if not ctx.options.dry_run:
                ctx.state.record_mapping("acl", acl["id"], found["id"], None, None)
            ctx.record(outcome)
            continue
        outcome.action = "created"
        pending.append((acl, item, outcome))
    batches = [pending[start : start + ACL_BATCH] for start in range(0, len(pending), ACL_BATCH)]
    if not ctx.options.dry_run:
        await asyncio.gather(*(_add_batch(ctx, batch) for batch in batches))
    for _, _, outcome in pending:
        ctx.record(outcome)


async def _add_batch(ctx: RunContext, batch: list[tuple[dict[str, Any], dict[str, Any], Outcome]]) -> None:
    try:
        response = await ctx.dest.post_json(
            "/v1/acl/batch_update", {"add_acls": [item for _, item, _ in batch]}
        )
    except ApiError as error:
        if error.status == 400 and len(batch) > 1:
            # One bad item refuses the whole batch: retry one by one so only it fails.
            for entry in batch:
                await _add_batch(ctx, [entry])
            return
        for _, _, outcome in batch:
            outcome.action, outcome.reason, outcome.error = "failed", "api_error", error.to_dict()
        return
    added = {acl_key(acl): acl for acl in response.get("added_acls", [])}
    for acl, item, outcome in batch:
        created = added.get(acl_key(item))
        if created is not None:
            outcome.dest_id = created["id"]
            ctx.state.record_mapping("acl", acl["id"], created["id"], None, None)
    log.info("created acls", count=len(batch))
