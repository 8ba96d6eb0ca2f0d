"""`verify`: compare source and destination, write verify_report.json and a summary."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import orjson

from braintrust_migrate.config import Settings
from braintrust_migrate.engine import same_org
from braintrust_migrate.engine.inventory import (
    ALL_LISTABLE,
    PER_OWNER,
    Inventory,
    identity,
    load_inventory,
    load_owned,
)
from braintrust_migrate.engine.names import project_names
from braintrust_migrate.engine.private import make_dirs
from braintrust_migrate.engine.refs import REFS_BY_OWNER
from braintrust_migrate.engine.renames import source_project_names
from braintrust_migrate.engine.report import ReportFiles, html_path, write_atomic
from braintrust_migrate.engine.resources import (
    ACL_FIELDS,
    ACL_TYPE,
    BY_KIND,
    EVENT_STREAMS,
    PROJECT_TYPE,
    RESOURCE_TYPES,
    ResourceType,
)
from braintrust_migrate.engine.runner import discover_org
from braintrust_migrate.engine.scope import owner_objects, project_of, selected
from braintrust_migrate.engine.selection import selected_projects
from braintrust_migrate.engine.state import StateStore
from braintrust_migrate.engine.statedir import resolve_state_dir, sibling_dest_ids
from braintrust_migrate.source import Source
from braintrust_migrate.source.live import open_live
from braintrust_migrate.source.reader import Window
from braintrust_migrate.textsafe import printable
from braintrust_migrate.verify.events import ContainerParity, compare_container
from braintrust_migrate.verify.expected import Todos, grouped, load_todos
from braintrust_migrate.verify.leaks import LeakLog
from braintrust_migrate.verify.objects import IdMap, TypeParity, compare_type
from braintrust_migrate.verify.report_html import render_verify_html

ACL_REFS = tuple(ref.path for ref in REFS_BY_OWNER[ACL_TYPE.kind])
# Compared object by object (ACLs have their own parity; facets are part of their owner).
COMPARED = tuple(rt for rt in RESOURCE_TYPES if rt is not ACL_TYPE and rt.facet_of is None)
# Kinds whose every destination object is listed: a mapping to an absent one is stale.
LISTED_KINDS = frozenset(rt.kind for rt in COMPARED)


def acl_key(acl: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(acl.get(name) for name in ACL_FIELDS)


class VerifyResult(ReportFiles):
    @property
    def ok(self) -> bool:
        return bool(self.report["ok"])


def _by_type(inv: Inventory, rt: ResourceType) -> list[dict[str, Any]]:
    # System objects (e.g. roles without an org) are the platform's, not the org's.
    return [o for o in inv.of(rt.kind) if rt.admits(o) and not rt.is_system(o)]


def _in_scope(rt: ResourceType, obj: dict[str, Any], inv: Inventory, projects: set[str]) -> bool:
    """Whether an object belongs to the selected projects (objects outside every project always do)."""
    return selected(project_of(rt, obj, inv), rt, projects)


class Verifier:
    def __init__(
        self,
        settings: Settings,
        *,
        map_users: bool = False,
        folder: Path | None = None,
        sample: int | None = None,
        source: Source | None = None,
    ) -> None:
        # An export folder for `verify --from DIR` (its selection the run's, unless it gives one);
        # else the source org.
        self.settings = source.settings_for(settings) if source is not None else settings
        self.source = source
        self.map_users = map_users
        self.folder = folder
        self.sample = sample
        self._source_users: set[str] = set()
        self._emails: dict[str, str] = {}

    async def run(self) -> VerifyResult:
        async with contextlib.AsyncExitStack() as stack:
            source = self.source
            if source is None:
                source = await stack.enter_async_context(open_live(self.settings, "source"))
            dest = await stack.enter_async_context(open_live(self.settings, "dest"))
            return await self._run(source, dest)

    def _types(self) -> list[ResourceType]:
        chosen = set(self.settings.migration_resources) or {rt.name for rt in COMPARED}
        return [rt for rt in COMPARED if rt.name in chosen or rt is PROJECT_TYPE]

    async def _run(self, source: Source, dest: Source) -> VerifyResult:
        s = self.settings
        started = time.time()
        source_org, dest_org = await asyncio.gather(
            discover_org(source, s.bt_source_org_name), discover_org(dest, s.bt_dest_org_name)
        )
        names = project_names(s)
        if self.source is None:  # an export may be compared with the org it came from
            same_org.early_check(source_org, dest_org, names, s.migration_projects)  # before any report
        src_inv, dst_inv = await asyncio.gather(
            load_inventory(source, s.bt_source_org_name, [rt for rt in ALL_LISTABLE if rt in COMPARED]),
            load_inventory(dest, s.bt_dest_org_name, [rt for rt in ALL_LISTABLE if rt in COMPARED]),
        )
        projects = selected_projects(s, src_inv)
        for rt in PER_OWNER:
            await asyncio.gather(
                load_owned(source, src_inv, rt, owner_objects(rt, src_inv)),
                load_owned(dest, dst_inv, rt, owner_objects(rt, dst_inv)),
            )
        # The same --state-dir meanings as migrate: the root, a pair folder or a run folder.
        folder = resolve_state_dir(s.migration_state_dir, source_org, dest_org).folder
        ids = await self._id_map(source, dest, folder, source_org, dest_org, src_inv, dst_inv)
        if same_org.is_copy(source_org, dest_org, names):
            # The copies are not sources, and what is outside the copy is its own counterpart.
            projects = same_org.without_copies(projects, {ids.ids[p] for p in projects if p in ids.ids})
            same_org.self_map(ids.ids, src_inv, projects)
        # Objects other pairs into this destination copied (consolidation) are theirs, not extra.
        foreign = (sibling_dest_ids(folder) or set()) - set(ids.ids.values())
        todos = load_todos(folder)
        todos.emails = self._emails
        dest_projects = {ids.ids[p] for p in projects if p in ids.ids}
        results: list[TypeParity] = []
        expected: dict[str, str] = {}  # source id -> what it is, for objects the destination must hold
        for rt in self._types():
            sources = [o for o in _by_type(src_inv, rt) if _in_scope(rt, o, src_inv, set(projects))]
            for obj in sources:
                if not (rt.skip and rt.skip(obj)):
                    expected[obj["id"]] = f"{rt.kind} {obj.get('name') or obj.get('slug') or obj['id']!r}"
            dests = [o for o in _by_type(dst_inv, rt) if _in_scope(rt, o, dst_inv, dest_projects)]
            if rt is PROJECT_TYPE and s.migration_projects:
                dests = [o for o in dests if o["id"] in dest_projects]
            dests = [o for o in dests if o["id"] not in foreign]
            results.append(compare_type(rt, sources, dests, ids, dst_inv, todos))
        acl = None
        if not s.migration_resources or ACL_TYPE.name in s.migration_resources:
            if self.map_users:
                expected |= {u: f"user {u}" for u in self._source_users}
            acl = await self._acls(source, dest, ids, expected, todos)
        source_ids = {
            oid
            for kind, objs in src_inv.objects.items()
            for oid, obj in objs.items()
            if not (kind in BY_KIND and BY_KIND[kind].is_system(obj))
        }
        source_ids.add(source_org["id"])
        # An export checked against the org it came from holds that org's ids by design.
        leaks = LeakLog(source_ids if source_org["id"] != dest_org["id"] else set())
        for rt in self._types():
            for obj in _by_type(dst_inv, rt):
                leaks.scan_object(rt.name, obj)
        containers = await self._events(source, dest, src_inv, projects, ids, leaks)
        ok = (
            all(r.ok for r in results)
            and not leaks.count
            and (acl is None or acl.ok)
            and all(c.ok for c in containers)
        )
        accepted = [item for r in results + ([acl] if acl else []) for item in r.expected]
        report = {
            "ok": ok,
            "source_org": source_org.get("name"),
            "dest_org": dest_org.get("name"),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 2),
            "objects": [r.to_dict() for r in results] + ([acl.to_dict()] if acl else []),
            "events": [c.to_dict() for c in containers],
            "source_id_leaks": leaks.sample,
            "source_id_leak_count": leaks.count,
            # What migrate reported it could not do: differences that do not fail verify.
            "expected_differences": accepted,
            "expected_difference_counts": {k: len(v) for k, v in grouped(accepted).items()},
            "not_compared": [
                "transaction ids pinned in references (versions differ between orgs by design)",
                "secret values (the API never returns them)",
            ],
        }
        out = self.folder or folder / "verify" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
        make_dirs(out)
        json_path, text_path = out / "verify_report.json", out / "verify_summary.txt"
        write_atomic(json_path, orjson.dumps(report, option=orjson.OPT_INDENT_2))
        write_atomic(text_path, summary_text(report).encode())
        write_atomic(html_path(json_path), render_verify_html(report).encode())
        return VerifyResult(report, json_path, text_path)

    async def _events(
        self,
        source: Source,
        dest: Source,
        src_inv: Inventory,
        projects: dict[str, Any],
        ids: IdMap,
        leaks: LeakLog,
    ) -> list[ContainerParity]:
        s = self.settings
        chosen = set(s.migration_resources) or {stream.selected_as for stream in EVENT_STREAMS}
        window = Window(s.migration_created_after, s.migration_created_before)
        parities: list[ContainerParity] = []
        for stream in EVENT_STREAMS:
            if stream.selected_as not in chosen:
                continue
            rt = BY_KIND[stream.container]
            for obj in src_inv.of(rt.kind):
                if project_of(rt, obj, src_inv) in projects and (not rt.windowed or window.admits(obj)):
                    parities.append(
                        ContainerParity(stream.kind, obj["name"], obj["id"], ids.ids.get(obj["id"]))
                    )
        # Each container reads both sides at once: half as many containers keeps the requests in
        # flight within the limit, and the parsed pages held (~8 MB a side) under the memory target.
        slots = asyncio.Semaphore(max(1, s.migration_max_concurrent_resources // 2))

        async def one(parity: ContainerParity) -> ContainerParity:
            async with slots:
                return await compare_container(
                    source,
                    dest,
                    parity,
                    lambda _kind, object_id: ids.ids.get(object_id),
                    page=s.migration_event_page_size,
                    window=window,
                    sample=self.sample,
                    leaks=leaks,
                )

        return list(await asyncio.gather(*(one(p) for p in parities)))

    async def _id_map(
        self,
        source: Source,
        dest: Source,
        folder: Path,
        source_org: dict[str, Any],
        dest_org: dict[str, Any],
        src_inv: Inventory,
        dst_inv: Inventory,
    ) -> IdMap:
        ids = IdMap(
            {source_org["id"]: dest_org["id"]},
            names=project_names(self.settings),
            source_names=source_project_names(src_inv),
        )
        state_path = folder / "state.db"
        if state_path.exists():
            store = StateStore(state_path)
            try:
                for m in store.mappings():
                    if m.dest_id and (m.kind not in LISTED_KINDS or dst_inv.get(m.kind, m.dest_id)):
                        ids.ids[m.src_id] = m.dest_id
            finally:
                store.close()
        for rt in COMPARED:  # the platform's own objects: the destination's of the same name
            if rt.system is None:
                continue
            dest_system = {o.get("name"): o["id"] for o in dst_inv.of(rt.kind) if rt.is_system(o)}
            for obj in src_inv.of(rt.kind):
                if rt.is_system(obj) and obj.get("name") in dest_system:
                    ids.ids[obj["id"]] = dest_system[obj["name"]]
        if self.map_users:
            src_users, dst_users = await asyncio.gather(source.users(None), dest.users(None))
            by_email = {u["email"].lower(): u["id"] for u in dst_users if u.get("email")}
            self._source_users = {u["id"] for u in src_users}
            self._emails = {u["id"]: u["email"] for u in src_users if u.get("email")}
            for user in src_users:
                if user.get("email") and user["email"].lower() in by_email:
                    ids.ids[user["id"]] = by_email[user["email"].lower()]
        # Objects never migrated by this tool (or with no state): match by identity, in order.
        for rt in COMPARED:
            for obj in _by_type(src_inv, rt):
                if obj["id"] in ids.ids:
                    continue
                expected, _ = ids.translate(rt, obj)
                twin = dst_inv.find(rt, identity(rt, {**obj, **expected}))
                if twin is not None:
                    ids.ids[obj["id"]] = twin["id"]
        return ids

    async def _acls(
        self, source: Source, dest: Source, ids: IdMap, expected: dict[str, str], todos: Todos
    ) -> TypeParity:
        """ACL parity. An ACL naming an object the destination should hold but does not is
        missing (with the reason); one naming something never migrated is not applicable."""
        s = self.settings
        src_acls, dst_acls = await asyncio.gather(
            source.list_type(ACL_TYPE, s.bt_source_org_name),
            dest.list_type(ACL_TYPE, s.bt_dest_org_name),
        )
        parity = TypeParity(ACL_TYPE.name)
        dest_keys = {acl_key(a): a for a in dst_acls}
        claimed: set[str] = set()
        for acl in src_acls:
            translated = {
                k: ids.ids.get(acl[k], None) if k in ACL_REFS and acl.get(k) else acl.get(k)
                for k in ACL_FIELDS
            }
            label = {
                "name": f"{acl.get('object_type')} {acl.get('permission') or 'role'}",
                "source_id": acl["id"],
            }
            unmapped = [acl[k] for k in ACL_REFS if acl.get(k) and translated[k] is None]
            gone = [expected[ref] for ref in unmapped if ref in expected]
            # Left out by migrate for want of a destination user, with a to-do: expected.
            user_todo = todos.reason(ACL_TYPE.name, acl["id"]) == "user_not_mapped" and unmapped == [
                acl.get("user_id")
            ]
            if user_todo:
                parity.not_migratable.append({**label, "reason": "user_not_mapped"})
                parity.expected.append(todos.entry(ACL_TYPE.name, label, "user_not_mapped"))
                continue
            if gone:
                parity.source += 1
                reason = "; ".join(f"{what} is missing in the destination" for what in gone)
                parity.missing.append({**label, "reason": reason})
                continue
            if unmapped:
                parity.not_migratable.append(
                    {**label, "reason": "references an object, user or group that is not migrated"}
                )
                continue
            parity.source += 1
            twin = dest_keys.get(acl_key(translated))
            if twin is None:
                parity.missing.append(label)
            else:
                parity.matched += 1
                claimed.add(twin["id"])
        mapped_objects = set(ids.ids.values())
        for acl in dst_acls:
            if acl["id"] not in claimed and acl.get("object_id") in mapped_objects:
                parity.extra.append(
                    {
                        "name": f"{acl.get('object_type')} {acl.get('permission') or 'role'}",
                        "dest_id": acl["id"],
                    }
                )
        return parity


def summary_text(report: dict[str, Any]) -> str:
    lines = [
        f"braintrust-migrate verify: {'PARITY' if report['ok'] else 'DIFFERENCES FOUND'}",
        f"source: {report['source_org']}  ->  destination: {report['dest_org']}",
        "",
        f"{'type':<22}{'source':>8}{'matched':>9}{'missing':>9}{'extra':>7}{'differ':>8}{'n/a':>6}"
        f"{'expected':>10}",
    ]
    for row in report["objects"]:
        lines.append(
            f"{row['type']:<22}{row['source']:>8}{row['matched']:>9}{row['missing']:>9}{row['extra']:>7}"
            f"{row['differing']:>8}{len(row['not_migratable']):>6}{row.get('expected', 0):>10}"
        )
    for row in report["objects"]:
        for kind in ("missing", "extra", "differing"):
            for item in row[f"{kind}_sample"][:5]:
                detail = f" fields: {', '.join(item['fields'])}" if item.get("fields") else ""
                detail += f" ({item['reason']})" if item.get("reason") else ""
                lines.append(f"  {kind}: {row['type']} {item.get('name')}{detail}")
    events = report.get("events") or []
    if events:
        lines += ["", f"{'event rows':<34}{'source':>10}{'dest':>10}{'missing':>9}{'extra':>7}{'differ':>8}"]
        for row in events:
            label = f"{row['container']} {row['name']}"[:33]
            lines.append(
                f"{label:<34}{row['source_rows']:>10}{row['dest_rows']:>10}{row['missing']:>9}{row['extra']:>7}{row['differing']:>8}"
            )
        for row in events:
            for kind in ("missing", "extra", "differing"):
                if row[f"{kind}_sample"]:
                    lines.append(
                        f"  {kind} rows in {row['container']} {row['name']}: {', '.join(row[f'{kind}_sample'][:10])}"
                    )
    if report["source_id_leak_count"]:
        lines += ["", f"source-org ids found in the destination: {report['source_id_leak_count']}"]
        for leak in report["source_id_leaks"][:10]:
            row = f" row {leak['row_id']}" if "row_id" in leak else ""
            lines.append(f"  {leak['type']} {leak['dest_id']}{row} {leak['field']} = {leak['source_id']}")
    lines += _expected_lines(report.get("expected_differences") or [])
    lines += ["", "not compared: " + "; ".join(report["not_compared"])]
    return "\n".join(printable(line) for line in lines) + "\n"


def _expected_lines(items: list[dict[str, Any]], examples: int = 3) -> list[str]:
    """The to-dos migrate reported, grouped by kind with counts and the first few names."""
    if not items:
        return []
    lines = ["", f"Expected differences ({len(items)}): to-dos reported by migrate, they do not fail verify"]
    for reason, group in grouped(items).items():
        lines += [f"  {reason} ({len(group)}): {group[0]['what']}", f"    to do: {group[0]['todo']}"]
        for item in group[:examples]:
            where = f"{item['project']}/" if item.get("project") else ""
            users = f" (users: {', '.join(item['users'][:3])})" if item.get("users") else ""
            lines.append(f"    - {item['type']} {where}{item.get('name')}{users}")
        if len(group) > examples:
            lines.append(f"    ... and {len(group) - examples} more (all in verify_report.json)")
    return lines


__all__ = ["Verifier", "VerifyResult"]
