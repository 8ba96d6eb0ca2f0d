"""Migrating one object: translate its references, decide what to do, write, record."""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.client import ApiError
from braintrust_migrate.client.errors import BadRequestError, ConflictError
from braintrust_migrate.engine.checksum import body_copy, checksum, differing_paths, normalize, project
from braintrust_migrate.engine.context import PLACEHOLDER_PREFIX, RunContext, is_placeholder, placeholder
from braintrust_migrate.engine.graph import Node, target_keys
from braintrust_migrate.engine.inventory import identity, load_owned, relist
from braintrust_migrate.engine.refs import USER_KIND, UUID_RE, Slot, drop_slots, find_slots
from braintrust_migrate.engine.renames import text_mentions
from braintrust_migrate.engine.report import Action, Outcome, Unresolved
from braintrust_migrate.engine.resources import BY_KIND, ResourceType
from braintrust_migrate.engine.state import Mapping
from braintrust_migrate.liblog import get_logger

log = get_logger(__name__)

PLACEHOLDER_RE = re.compile(re.escape(PLACEHOLDER_PREFIX) + r"[a-z_]+:" + UUID_RE.pattern)
# Most reference targets one object may lack and still be recognised as unfinished (3^n variants).
MAX_UNFINISHED_TARGETS = 6
UNFINISHED_NOTE = "completed: an earlier run created it without some references"
OUTSIDE_WINDOW = "reference_outside_window"


@dataclass
class Translation:
    body: dict[str, Any]
    unresolved: list[Unresolved] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # soft references to patch in later
    skip_reason: str | None = None  # a reference the object cannot go without (on_missing "skip")
    missing_required: bool = False
    outside_required: bool = False  # a required reference targets an object the time window excludes
    dest_name: str | None = None  # a renamed project's destination name


def _dest_version(ctx: RunContext, kind: str | None, src_id: str, version: str) -> str | None:
    for key in target_keys(kind, src_id):
        found = ctx.state.dest_xact(key[0], key[1], version)
        if found:
            return found
    return None


async def translate(ctx: RunContext, node: Node, *, final: bool) -> Translation:
    """The node's writable body with every reference in destination ids.

    Before `final`, a soft reference whose target is still pending is left out (and
    listed in `pending`); unresolvable references are removed and reported.
    """
    body = body_copy(node.rt.body(node.src))
    result = Translation(body)
    if ctx.names.active:
        ctx.rename(node.rt.kind, body)
        if body.get("name") != node.rt.body(node.src).get("name"):
            result.dest_name = body.get("name")
        result.notes += text_mentions(node.rt.kind, body, ctx.names, ctx.source_project_names())
    to_drop = []
    for slot in find_slots(node.rt.kind, body):
        kind, src_id = slot.target, slot.value
        if slot.ref.on_missing == "skip":
            # Copied only once what it names was migrated (this run or an earlier one).
            dest_id = ctx.peek(kind, src_id)
            if not dest_id:
                result.skip_reason = _skip_reason(ctx, slot)
                if result.skip_reason == "user_not_mapped":  # who to invite, for the to-do list
                    result.notes.append(f"user {ctx.users.email(src_id) or src_id}")
                return result
            slot.parent[slot.key] = dest_id
            continue
        keys = target_keys(kind, src_id)
        soft = any(key in node.soft for key in keys)
        dest_id = ctx.peek(kind, src_id) if soft and not final else await ctx.resolve(kind, src_id)
        if dest_id:
            slot.parent[slot.key] = dest_id
            version_field = slot.ref.version_field
            if version_field and slot.version is not None and isinstance(slot.parent, dict):
                # The very object (an export restored into its own org) has the same history.
                same = dest_id == src_id
                translated = (
                    str(slot.version) if same else _dest_version(ctx, kind, src_id, str(slot.version))
                )
                where = f"{slot.path.rsplit('.', 1)[0]}.{version_field}"
                if translated:
                    slot.parent[version_field] = translated
                elif soft and not final and any(key in ctx.nodes for key in keys):
                    # Its target is still to be settled in this run (whose version may be known
                    # then, e.g. once an earlier run's lost record is rebuilt): decide later.
                    del slot.parent[version_field]
                    result.pending.append(where)
                else:
                    del slot.parent[version_field]
                    result.notes.append(f"version_not_translatable: {where}")
            continue
        to_drop.append(slot)
        if soft and not final and any(key in ctx.nodes for key in keys):
            result.pending.append(slot.path)
            continue
        if ctx.outside(kind, str(src_id)):
            # Left out on purpose (--created-after/--before): dropped with a note, not a to-do.
            result.notes.append(f"{OUTSIDE_WINDOW}: {slot.path} ({kind} {src_id})")
            result.outside_required = result.outside_required or slot.ref.on_missing == "fail"
            continue
        result.unresolved.append(Unresolved(slot.path, kind, str(src_id)))
        if slot.ref.on_missing == "fail":
            result.missing_required = True
    drop_slots(to_drop)
    _translate_embedded_ids(ctx, body, result)
    return result


def _skip_reason(ctx: RunContext, slot: Slot) -> str:
    if slot.target is None:
        return "object_type_not_migratable"
    if slot.target == USER_KIND:
        return "user_not_mapped" if ctx.users.enabled else "user_mapping_disabled"
    return slot.ref.skip_reason or "unresolved_reference"


def _translate_embedded_ids(ctx: RunContext, body: dict[str, Any], result: Translation) -> None:
    """Ids inside opaque payloads (BTQL filters, view and chart options, metadata).

    No field lists them, so scan every string: a source-org object id found there is
    replaced by its destination id, or its key is removed and reported when unknown.
    """

    def fix(text: str, path: str) -> str | None:
        # A dry run's placeholder holds the source id it stands for: it is already translated.
        for found in set(UUID_RE.findall(PLACEHOLDER_RE.sub("", text))):
            kind = ctx.source_kind(found)
            if kind is None:
                continue
            dest_id = ctx.peek(kind, found)
            if not dest_id:
                if ctx.outside(kind, found):
                    result.notes.append(f"{OUTSIDE_WINDOW}: {path} ({kind} {found})")
                else:
                    result.unresolved.append(Unresolved(path, kind, found))
                return None
            text = text.replace(found, dest_id)
        return text

    def walk(node: Any, path: str) -> None:
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        removed = []
        for key, value in items:
            here = f"{path}.{key}" if isinstance(node, dict) else f"{path}[{key}]"
            here = here.lstrip(".")
            if isinstance(value, dict | list):
                walk(value, here)
            elif isinstance(value, str) and len(value) >= 36:
                fixed = fix(value, here)
                if fixed is None:
                    removed.append(key)
                else:
                    node[key] = fixed
        for key in reversed(removed):
            del node[key]

    walk(body, "")


def _fingerprint(value: str) -> str:
    # Lets a changed value be detected on re-run without storing the value.
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def secret_extras(ctx: RunContext, node: Node) -> tuple[dict[str, Any], str | None]:
    """Values the API never returns, from the secrets file; or the reason they are missing."""
    secret = node.rt.secret
    if secret is None:
        return {}, None
    value = ctx.secrets.value(secret.section, node.src.get("name", ""), node.project)
    return ({secret.field: value}, None) if value else ({}, secret.missing)


def _checksum(body: dict[str, Any], extras: dict[str, Any]) -> str:
    return checksum({**body, **{f"{k}_fingerprint": _fingerprint(str(v)) for k, v in extras.items()}})


async def _find_dest(
    ctx: RunContext, node: Node, body: dict[str, Any]
) -> tuple[dict[str, Any] | None, Mapping | None]:
    """The destination object for this node, and our id-map entry when it says the object is ours."""
    rt = node.rt
    if rt.facet_of is not None:
        # A part of its owner: the owner's destination object, if the run has it.
        owner_id = ctx.known.get((rt.facet_of, node.src["id"]))
        found = ctx.dst_inv.get(rt.facet_of, owner_id) if owner_id else None
        return found, ctx.state.mapping(*node.key)
    await _load_owner(ctx, rt, body)
    mapping = ctx.state.mapping(*node.key)
    if mapping and mapping.dest_id:
        found = ctx.dst_inv.get(rt.kind, mapping.dest_id)
        if found is not None:
            return found, mapping
    intent = mapping if mapping is not None and not mapping.dest_id else None
    return ctx.dst_inv.find(rt, identity(rt, body)), intent


async def write(
    ctx: RunContext, node: Node, body: dict[str, Any], extras: dict[str, Any], dest: dict[str, Any] | None
) -> dict[str, Any]:
    rt = node.rt
    payload = {**body, **extras}
    if dest is None:
        if rt.org_name_body and ctx.dest_org_name:
            payload["org_name"] = ctx.dest_org_name
        if ctx.state.mapping(*node.key) is None:
            # An intent: if we die before recording the new id, the next run finds the
            # object by identity and knows it is ours, not a pre-existing conflict.
            ctx.state.record_mapping(rt.kind, node.src["id"], "", None, None, created=True)
        if rt.batch is not None:
            return await ctx.batcher(rt).create(payload)
        try:
            return await ctx.dest.post_json(rt.path, payload)
        except (BadRequestError, ConflictError):
            # A retry after a lost answer meets the object the first attempt created.
            landed = await _landed(ctx, node, body)
            if landed is None:
                raise
            return landed
    if rt.merges(dest):
        return await ctx.dest.patch_json(f"{rt.path}/{dest['id']}", rt.merge_patch(body, dest))
    renamed = rt.facet_of is None and identity(rt, body) != identity(rt, dest)
    if rt.update == "patch" or renamed:
        patch = {k: v for k, v in payload.items() if k not in rt.immutable}
        return await ctx.dest.patch_json(f"{rt.path}/{dest['id']}", patch)
    return await ctx.dest.put_json(rt.path, payload)


async def _landed(ctx: RunContext, node: Node, body: dict[str, Any]) -> dict[str, Any] | None:
    """The destination object a create refused as existing, when it holds exactly `body`: our own
    earlier attempt (its intent is recorded). Anything else stays the refusal it was."""
    rt = node.rt
    if rt.per_owner:
        await _load_owner(ctx, rt, body, again=True)
    elif not await relist(ctx.dest_view, ctx.dst_inv, ctx.dest_org_name, rt):
        return None
    found = ctx.dst_inv.find(rt, identity(rt, body))
    if found is None or differing_paths(body, project(found, body)):
        return None
    return found


async def _load_owner(
    ctx: RunContext, rt: ResourceType, body: dict[str, Any], *, again: bool = False
) -> None:
    """The destination objects of a per-owner type that share `body`'s owner."""
    owner = body.get(rt.owner or "") if rt.per_owner else None
    # An owner planned by a dry run does not exist yet: it has nothing to read.
    if owner and not is_placeholder(owner):
        await load_owned(ctx.dest_view, ctx.dst_inv, rt, [(body["object_type"], owner)], again=again)


def _stored_as(rt: ResourceType) -> ResourceType:
    """The type whose inventory holds what a write returns (a facet's owner)."""
    return BY_KIND[rt.facet_of] if rt.facet_of else rt


def _remember(
    ctx: RunContext, node: Node, written: dict[str, Any], src_sum: str | None, *, created: bool = False
) -> None:
    rt, stored = node.rt, _stored_as(node.rt)
    old = ctx.dst_inv.get(stored.kind, written["id"])
    if old is not None:
        ctx.dst_inv.remove(stored, old)
    ctx.dst_inv.add(stored, written)
    ctx.known[node.key] = written["id"]
    ctx.state.record_mapping(
        rt.kind, node.src["id"], written["id"], src_sum, checksum(rt.body(written)), created=created
    )
    _remember_version(ctx, node, written)


def _remember_version(ctx: RunContext, node: Node, dest: dict[str, Any]) -> None:
    if node.rt.versioned and node.src.get("_xact_id") and dest.get("_xact_id"):
        ctx.state.record_xact(node.rt.kind, node.src["id"], str(node.src["_xact_id"]), str(dest["_xact_id"]))


def _drop_variants(kind: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`body` with some droppable references removed, the way a creation that could not
    resolve them (deferred or missing targets) writes it: per target, either every slot
    pointing at it is dropped (`drop_slots`: the key, list item, map entry or holder), or
    only its version pin is (`version_not_translatable`). The unchanged body is not yielded."""
    by_target: dict[tuple[str | None, str], list[int]] = {}
    all_slots = find_slots(kind, body)
    for index, slot in enumerate(all_slots):
        if slot.ref.on_missing == "drop":
            by_target.setdefault((slot.target, str(slot.value)), []).append(index)
    groups = list(by_target.values())
    if not groups or len(groups) > MAX_UNFINISHED_TARGETS:
        return
    ways = [
        ("keep", "drop", "unpin")
        if any(all_slots[i].version is not None for i in group)
        else ("keep", "drop")
        for group in groups
    ]
    for choice in itertools.product(*ways):
        if all(c == "keep" for c in choice):
            continue
        variant = body_copy(body)
        slots = find_slots(kind, variant)  # same walk, same order: indices match
        dropped: list[Slot] = []
        for how, members in zip(choice, groups, strict=True):
            for index in members:
                slot = slots[index]
                if how == "drop":
                    dropped.append(slot)
                elif how == "unpin" and slot.version is not None:
                    slot.parent.pop(slot.ref.version_field, None)
        drop_slots(dropped)
        yield variant


def lacks_only_references(kind: str, body: dict[str, Any], dest_body: dict[str, Any]) -> bool:
    """Whether the destination's writable `dest_body` equals the translated `body` except
    for references (or their version pins) it lacks, removed as `_drop_variants` describes.

    Such an object, found by identity but absent from our id map, is one an earlier run
    created with references it could not resolve yet (a cycle or cross-project link
    deferred, a target not migrated yet) and was stopped before patching them in; its
    state may live in another --state-dir or have been discarded by --fresh. Completing
    it is safe: every field is compared whole, so the write only adds links the source
    has and removes or changes nothing the destination holds, a deliberate edit included.
    Any other difference (an edited or extra field, a changed link or pin, an extra list
    item) is not of this form and stays a conflict.
    """
    expected = normalize(dest_body)
    if normalize(body) == expected:
        return False  # nothing lacking: plain adoption
    body = _with_stale_pins(kind, body, dest_body)
    if normalize(body) == expected:
        return True
    return any(normalize(variant) == expected for variant in _drop_variants(kind, body))


def _at(value: Any, path: str) -> Any:
    """The value at a slot path such as `prompt_data.tool_functions[2]` (None when absent)."""
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part[1:-1])
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def _with_stale_pins(kind: str, body: dict[str, Any], dest_body: dict[str, Any]) -> dict[str, Any]:
    """`body` with each version pin replaced by the destination's where the destination pins an
    older version of the same (translated) target: what an earlier run wrote before that target
    was patched again. A pin to another target, or to a newer version, is left to differ."""
    body = body_copy(body)
    for slot in find_slots(kind, body):
        field_name = slot.ref.version_field
        if not field_name or slot.version is None:
            continue
        parent_path = slot.path.rsplit(".", 1)[0] if "." in slot.path else ""
        theirs: Any = _at(dest_body, parent_path) if parent_path else dest_body
        if not isinstance(theirs, dict) or theirs.get(slot.key) != slot.value:
            continue
        mine, old = str(slot.version), str(theirs.get(field_name))
        if old.isdigit() and mine.isdigit() and int(old) < int(mine):
            slot.parent[field_name] = theirs[field_name]
    return body


def decide(
    ctx: RunContext,
    mapping: Mapping | None,
    src_sum: str | None,
    body: dict[str, Any],
    dest: dict[str, Any],
    dest_body: dict[str, Any],
    *,
    has_secret: bool = False,
    reason: str | None = None,
    unfinished: bool = False,
) -> tuple[Action, str | None, list[str]]:
    """unchanged / updated / conflict for an object that exists in the destination.

    Ours (in the id map): compare checksums with what we last wrote and read back, so
    source changes update and destination edits are conflicts. Not ours: the same
    content is adopted as unchanged; content that only lacks references the source has
    (`unfinished`, see `lacks_only_references`) is completed; other content is a conflict
    unless --overwrite.
    """
    expected = project(dest, body)
    dest_sum = checksum(dest_body)
    if mapping is not None:
        source_changed = mapping.src_checksum != src_sum
        # No checksum: we created it but died before reading it back; it is ours.
        dest_changed = mapping.dest_checksum is not None and mapping.dest_checksum != dest_sum
        if dest_changed and not has_secret and not differing_paths(body, expected):
            # It already holds exactly what we would write: our own write, killed before we
            # recorded it (a later pin must map to this version, not the one before it).
            return "unchanged", reason, []
    else:
        # A secret value cannot be read back, so a supplied one always counts as a change.
        source_changed = bool(differing_paths(body, expected)) or has_secret
        dest_changed = source_changed and not unfinished
    if not source_changed and not dest_changed:
        return "unchanged", reason, []
    if dest_changed and not ctx.options.overwrite:
        why = "changed_in_destination" if mapping else "exists_with_different_content"
        return "conflict", why, differing_paths(body, expected)
    return "updated", reason, []


async def migrate_node(ctx: RunContext, node: Node, *, final: bool = False) -> Outcome:
    """Bring one object to the destination (or plan it, in a dry run). Never raises ApiError."""
    started = time.perf_counter()
    outcome = Outcome(
        type=node.rt.name,
        kind=node.rt.kind,
        name=node.name,
        source_id=node.src["id"],
        project=node.project,
        action="failed",
    )
    try:
        await _migrate(ctx, node, outcome, final)
    except ApiError as error:
        outcome.action, outcome.reason, outcome.error = "failed", "api_error", error.to_dict()
    outcome.duration_ms = round((time.perf_counter() - started) * 1000, 1)
    return outcome


async def _migrate(ctx: RunContext, node: Node, outcome: Outcome, final: bool) -> None:
    rt = node.rt
    skip = rt.skip(node.src) if rt.skip else None
    if skip:
        outcome.action, outcome.reason = "skipped", skip
        return
    tr = await translate(ctx, node, final=final)
    outcome.unresolved, outcome.notes, outcome.dest_name = tr.unresolved, tr.notes, tr.dest_name
    if tr.skip_reason:
        outcome.action, outcome.reason = "skipped", tr.skip_reason
        return
    if tr.missing_required:
        outcome.action, outcome.reason = "failed", "unresolved_reference"
        return
    if tr.outside_required:
        # It cannot exist without an object the window leaves out (a view on it, an automation scoped to it).
        outcome.action, outcome.reason = "skipped", OUTSIDE_WINDOW
        return
    if any(name not in tr.body for name in rt.required):
        if _planned_after_rows(ctx, node, tr):
            return await _plan_after_rows(ctx, node, tr, outcome)
        # e.g. a snapshot of a dataset version whose rows were not copied: nothing to pin it to.
        outcome.action, outcome.reason = "skipped", "pinned_version_unknown"
        return
    extras, reason = secret_extras(ctx, node)
    outcome.reason = reason
    src_sum = None if tr.pending else _checksum(tr.body, extras)
    dest, mapping = await _find_dest(ctx, node, tr.body)
    if rt.facet_of is not None and dest is None and not ctx.options.dry_run:
        outcome.action, outcome.reason = "skipped", f"{rt.facet_of}_not_migrated"
        return
    if tr.pending and dest is not None:
        # It exists already: settle it whole once its pending references exist.
        outcome.action, outcome.dest_id = "unchanged", dest["id"]
        ctx.known[node.key] = dest["id"]
        outcome.pending = tr.pending
        return
    if dest is None:
        action: Action = "created"
    elif rt.update is None:
        action = "unchanged"  # its identity is its whole content: found means the same
    elif rt.merges(dest):
        # Built-in (every org has it, with its own members): add what the source has, remove nothing.
        action = "updated" if rt.merge_patch(tr.body, dest) else "unchanged"
    else:
        # Not in our id map: perhaps a creation an earlier run could not finish.
        unfinished = mapping is None and lacks_only_references(rt.kind, tr.body, rt.body(dest))
        action, outcome.reason, outcome.differing_fields = decide(
            ctx,
            mapping,
            src_sum,
            tr.body,
            dest,
            rt.body(dest),
            has_secret=bool(extras),
            reason=reason,
            unfinished=unfinished,
        )
        if unfinished and action == "updated":
            outcome.notes.append(UNFINISHED_NOTE)
        if action == "conflict" and not rt.body(dest):
            action, outcome.reason = "updated", None  # the destination holds none of it: nothing lost
    outcome.action = action
    if action in ("unchanged", "conflict"):
        outcome.dest_id = dest["id"] if dest else None
        ctx.known[node.key] = outcome.dest_id or ""
        if action == "unchanged" and dest is not None and not ctx.options.dry_run:
            ctx.state.record_mapping(rt.kind, node.src["id"], dest["id"], src_sum, checksum(rt.body(dest)))
            # Same content: the destination's current version is the source's current one, so pins
            # to it translate even when the run that wrote it kept its state elsewhere.
            _remember_version(ctx, node, dest)
        return
    if ctx.options.dry_run:
        outcome.dest_id = dest["id"] if dest else placeholder(rt.kind, node.src["id"])
        ctx.known[node.key] = outcome.dest_id
        return
    written = await write(ctx, node, tr.body, extras, dest)
    outcome.pending = tr.pending
    if not written.get("id"):  # a batch that did not say what it created: nothing to map
        return
    _remember(ctx, node, written, src_sum, created=dest is None)  # created: --sync-deletes may delete it
    outcome.dest_id = written["id"]
    # This object's log line is written when it is recorded (context.record -> narrate).


def _planned_after_rows(ctx: RunContext, node: Node, tr: Translation) -> bool:
    """In a dry run, whether the missing version is one this run's rows would create."""
    if not ctx.options.dry_run or node.rt.phase != "after_rows":
        return False
    return any(
        slot.ref.version_field in node.rt.required
        and slot.path in tr.body
        and any(key in ctx.nodes for key in target_keys(slot.target, slot.value))
        for slot in find_slots(node.rt.kind, node.src)
    )


async def _plan_after_rows(ctx: RunContext, node: Node, tr: Translation, outcome: Outcome) -> None:
    """A dry run's plan for a snapshot: its dataset's version is known only once rows are copied."""
    version_notes = [n for n in tr.notes if n.startswith("version_not_translatable")]
    outcome.notes = [n for n in tr.notes if n not in version_notes]
    dest, mapping = await _find_dest(ctx, node, tr.body)
    if dest is None:
        outcome.action, outcome.reason = "created", "after_rows"
        outcome.dest_id = placeholder(node.rt.kind, node.src["id"])
    else:
        # Everything but the pin is compared now; the pin only once the rows are there.
        differing = differing_paths(tr.body, project(dest, tr.body))
        if not differing:
            outcome.action = "unchanged"
        elif mapping is not None or ctx.options.overwrite:
            outcome.action = "updated"
        else:
            outcome.action, outcome.reason = "conflict", "exists_with_different_content"
            outcome.differing_fields = differing
        outcome.dest_id = dest["id"]
    ctx.known[node.key] = outcome.dest_id or ""
