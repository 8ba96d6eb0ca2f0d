"""`verify --export DIR`: an export compared with the live org it was read from. The two
hold the same ids, so there is nothing to translate: every exported object must still be
listed with the same content (secret values aside), and every container must hold the same
live rows, by id and content digest. What the org gained since is counted as new."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.archive.export import without_secrets
from braintrust_migrate.archive.folder import FolderSource
from braintrust_migrate.config import ConfigError, Settings
from braintrust_migrate.engine.checksum import checksum
from braintrust_migrate.engine.inventory import ALL_LISTABLE, PER_OWNER, load_inventory, load_owned
from braintrust_migrate.engine.resources import BY_KIND
from braintrust_migrate.engine.runner import discover_org
from braintrust_migrate.engine.scope import project_of, selected
from braintrust_migrate.engine.selection import selected_projects
from braintrust_migrate.source import Source
from braintrust_migrate.source.reader import Window
from braintrust_migrate.textsafe import printable

SAMPLE = 10  # ids named per difference in the report


@dataclass
class Parity:
    what: str  # a kind, or "<stream> <container name>"
    exported: int = 0
    live: int = 0
    missing: list[str] = field(default_factory=list)  # exported, gone from the org
    differing: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # in the org, not in the export

    @property
    def ok(self) -> bool:
        return not (self.missing or self.differing or self.new)

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "exported": self.exported,
            "live": self.live,
            "ok": self.ok,
            **{name: len(getattr(self, name)) for name in ("missing", "differing", "new")},
            "examples": {
                name: getattr(self, name)[:SAMPLE]
                for name in ("missing", "differing", "new")
                if getattr(self, name)
            },
        }


def _diff(parity: Parity, exported: dict[str, str], live: dict[str, str]) -> Parity:
    parity.exported, parity.live = len(exported), len(live)
    parity.missing = sorted(i for i in exported if i not in live)
    parity.differing = sorted(i for i, digest in exported.items() if i in live and live[i] != digest)
    parity.new = sorted(i for i in live if i not in exported)
    return parity


async def _row_digests(
    source: Source, kind: str, container: str, page: int, window: Window
) -> dict[str, str]:
    """id -> digest of its latest row (a later sighting replaces an earlier one)."""
    digests: dict[str, str] = {}
    async for chunk in source.rows(kind, container, page, window).pages():
        for row in chunk.rows:
            digests[str(row.get("id"))] = checksum(row)
    return digests


async def compare_export(settings: Settings, live: Source, folder: FolderSource) -> dict[str, Any]:
    settings = folder.settings_for(settings)  # the export's window and selection
    manifest = folder.manifest
    org = await discover_org(live, settings.bt_source_org_name)
    if org["id"] != manifest.source_org.get("id"):
        raise ConfigError(
            f"{folder.describe()} is an export of org {manifest.source_org.get('name')!r}, not of the"
            f" source org {org.get('name')!r}"
        )
    kinds = set(manifest.objects)
    listed = [rt for rt in ALL_LISTABLE if rt.kind in kinds]
    live_inv, folder_inv = await asyncio.gather(
        load_inventory(live, settings.bt_source_org_name, listed),
        load_inventory(folder, None, listed),
    )
    for rt in PER_OWNER:
        if rt.kind in kinds:
            owners = {(o["object_type"], o["object_id"]) for o in await folder.list_type(rt, None)}
            await load_owned(live, live_inv, rt, sorted(owners))
            await load_owned(folder, folder_inv, rt, sorted(owners))
    # New objects count inside the export's selection only, judged as the export judged it
    # (the folder holds every project: it names the chosen ones whatever became of them since).
    projects = selected_projects(settings, folder_inv)
    objects = []
    for kind in sorted(kinds):
        exported = {i: checksum(o) for i, o in folder_inv.objects.get(kind, {}).items()}
        rt = BY_KIND[kind]
        live_objs = {
            i: checksum(without_secrets(kind, o))
            for i, o in live_inv.objects.get(kind, {}).items()
            if i in exported or selected(project_of(rt, o, live_inv), rt, projects)
        }
        objects.append(_diff(Parity(kind), exported, live_objs))
    window = Window(settings.migration_created_after, settings.migration_created_before)
    page = settings.migration_event_page_size
    rows = []
    for container in manifest.containers:
        exported_rows, live_rows = await asyncio.gather(
            _row_digests(folder, container.kind, container.id, page, window),
            _row_digests(live, container.kind, container.id, page, window),
        )
        rows.append(_diff(Parity(f"{container.kind} {container.name}"), exported_rows, live_rows))
    ok = all(p.ok for p in objects + rows)
    return {
        "ok": ok,
        "org": org.get("name"),
        "folder": folder.describe(),
        "objects": [p.to_dict() for p in objects],
        "rows": [p.to_dict() for p in rows],
    }


def summary_text(report: dict[str, Any]) -> str:
    verdict = "EXPORT MATCHES THE ORG" if report["ok"] else "DIFFERENCES FOUND"
    lines = [
        f"braintrust-migrate verify --export: {verdict}",
        f"org {report['org']!r}  <->  {report['folder']}",
        "",
    ]
    lines.append(f"{'what':<40} {'exported':>9} {'live':>9} {'missing':>8} {'differ':>7} {'new':>6}")
    for p in report["objects"] + report["rows"]:
        lines.append(
            f"{printable(str(p['what']))[:40]:<40} {p['exported']:>9} {p['live']:>9} {p['missing']:>8}"
            f" {p['differing']:>7} {p['new']:>6}"
        )
        for name, ids in p["examples"].items():
            lines.append(f"  {name}: {', '.join(ids)}")
    return "\n".join(lines) + "\n"
