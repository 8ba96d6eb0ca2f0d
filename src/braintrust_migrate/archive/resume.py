"""Where an export left off: the folder is checked to be this org's export (or new and empty),
then its journal is replayed into `Progress`: the parts every container (and pinned version)
already holds, the versions and containers finished, the attachments downloaded."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from braintrust_migrate.archive import layout
from braintrust_migrate.archive.layout import Manifest
from braintrust_migrate.archive.parts import JOURNAL, Journal
from braintrust_migrate.config import ConfigError
from braintrust_migrate.engine.statedir import LOCK_FILE

META = "source.json"  # in the work dir: which org the unfinished export reads
Key = tuple[str, str, str | None]  # (stream kind, container id, pinned version or None)


@dataclass
class Progress:
    parts: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    versions_done: set[Key] = field(default_factory=set)
    complete: set[tuple[str, str]] = field(default_factory=set)
    attachments: dict[str, dict[str, Any]] = field(default_factory=dict)  # source key -> its entry

    def replay(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            event = entry.get("event")
            key: Key = (str(entry.get("kind")), str(entry.get("id")), entry.get("version"))
            if event == "part":
                self.parts.setdefault(key, []).append(entry)
            elif event == "reset":  # a container (or version) read again from its start
                self.parts[key] = []
                self.versions_done.discard(key)
            elif event == "version_done":
                self.versions_done.add(key)
            elif event == "container_done":
                self.complete.add((key[0], key[1]))
            elif event == "attachment":
                self.attachments[str(entry["key"])] = entry

    def last_key(self, key: Key) -> str | None:
        return next((p["last_key"] for p in reversed(self.parts.get(key, [])) if p.get("last_key")), None)


def check_folder(
    root: Path, org: dict[str, Any], compression: str, selection: dict[str, Any], fresh: bool
) -> None:
    """An export folder holds one source org and one selection: another org's export is never
    mixed in or wiped, a folder holding anything else is not written into, and a re-run adds to
    the folder only what the same selection finds (another one would leave files no manifest lists)."""
    manifest = root / layout.MANIFEST
    meta = root / layout.WORK_DIR / META
    if root.exists() and not root.is_dir():
        raise ConfigError(f"export folder {root}: is a file, not a folder")
    ours = manifest.exists() or (root / layout.WORK_DIR).exists()
    if root.exists() and not ours and any(root.iterdir()):
        raise ConfigError(
            f"export folder {root}: not empty and holds no export: export into a new or empty folder"
        )
    found: dict[str, Any] | None = None
    try:
        if manifest.exists():
            found = orjson.loads(manifest.read_bytes()).get("source_org")
        elif meta.exists():
            found = orjson.loads(meta.read_bytes())
    except (orjson.JSONDecodeError, OSError, AttributeError):
        raise ConfigError(f"export folder {root}: its {layout.MANIFEST} is unreadable") from None
    if isinstance(found, dict) and found.get("id") and found["id"] != org["id"]:
        raise ConfigError(
            f"export folder {root} holds an export of org {found.get('name')!r}, not of the source"
            f" org {org.get('name')!r}: export into another folder"
        )
    if fresh:
        return
    recorded = orjson.loads(manifest.read_bytes()) if manifest.exists() else found or {}
    previous = recorded.get("compression")
    if previous is not None and previous != compression:
        raise ConfigError(
            f"export folder {root} was exported with compression {previous!r}: use the same"
            " compression, or --fresh"
        )
    before = recorded.get("selection")
    if before is not None and _normal(before) != _normal(selection):
        raise ConfigError(
            f"export folder {root} holds an export of another selection ({_describe(before)}): export"
            " the same selection into it, or into another folder, or start it over with --fresh"
        )


def _normal(selection: dict[str, Any]) -> dict[str, Any]:
    return {k: sorted(v) if isinstance(v, list) else v for k, v in selection.items()}


def _describe(selection: dict[str, Any]) -> str:
    parts = [f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in selection.items() if v]
    return "; ".join(parts) or "everything"


def prepare_folder(
    root: Path, org: dict[str, Any], compression: str, selection: dict[str, Any], fresh: bool
) -> tuple[Journal, Progress]:
    """The folder ready to write (emptied first with `fresh`), its journal, and what it holds."""
    work = root / layout.WORK_DIR
    if fresh:
        for name in (layout.ROWS_DIR, layout.OBJECTS_DIR, layout.ATTACHMENTS_DIR):
            shutil.rmtree(root / name, ignore_errors=True)
        for name in (layout.MANIFEST, layout.ORG_FILE, layout.USERS_FILE):
            (root / name).unlink(missing_ok=True)
        for path in work.glob("*"):  # the lock stays: it is held
            if path.is_dir():
                shutil.rmtree(path)
            elif path.name != LOCK_FILE:
                path.unlink()
    work.mkdir(parents=True, exist_ok=True)
    meta = {"id": org["id"], "name": org.get("name"), "compression": compression, "selection": selection}
    layout.write_atomic(work / META, layout.dump_json(meta))
    for tmp in root.rglob(".*.tmp"):  # files a kill left half written
        tmp.unlink(missing_ok=True)
    journal = Journal(work / JOURNAL)
    entries = journal.read()
    if not entries and (root / layout.MANIFEST).exists():
        entries = entries_from_manifest(Manifest.model_validate_json((root / layout.MANIFEST).read_bytes()))
        for entry in entries:  # a folder copied without its work dir
            journal.append(entry)
    progress = Progress()
    progress.replay(entries)
    return journal, progress


def entries_from_manifest(manifest: Manifest) -> list[dict[str, Any]]:
    """The journal a finished export's manifest stands for."""
    entries: list[dict[str, Any]] = []
    for c in manifest.containers:
        for version, parts in [(None, c.parts), *c.versions.items()]:
            entries += [
                {"event": "part", "kind": c.kind, "id": c.id, "version": version, **p.model_dump()}
                | {k: v for k, v in manifest.files[p.path].model_dump().items() if k != "rows"}
                for p in parts
                if p.path in manifest.files
            ]
            if version is not None:
                entries.append({"event": "version_done", "kind": c.kind, "id": c.id, "version": version})
    for key, a in manifest.attachments.items():
        sha = manifest.files.get(a.path)
        entries.append({"event": "attachment", "key": key, **a.model_dump(), "sha256": sha and sha.sha256})
    return entries
