"""Read a folder written by Braintrust's `bt sync pull` as the rows of one container.

What `bt sync pull TYPE:NAME [--root ROOT]` writes (bt's Rust `sync` command; ROOT defaults to
`bt-sync`), one "spec dir" per (object, direction, scope, filter, limit, page size):

    ROOT/<type>_<name>/<first 12 hex of the spec's sha256>/
        spec.json      {schema_version, object_ref, object_type, object_name, direction, scope,
                        filter, limit, page_size}
        state.json     the resume state: {status: running | completed, phase, items_done, ...}
        manifest.json  {schema_version, spec_hash, spec, status, items_done, output_path, ...}
        data/part-000001.jsonl, part-000002.jsonl, ...   rows, rotated at 128 MiB
    (<type> and <name> keep ASCII letters, digits, "-", "_", "." and turn anything else into "_".)
    Older bt versions: ROOT/<type>/<name>/<direction>/<scope>/spec_<12 hex>/ and a single
    `data.jsonl` or `data.ndjson` in place of `data/`.

Each line is one BTQL row as `select: * | from: TYPE('NAME') spans` returned it (`id`, `created`,
`_xact_id`, `_pagination_key`, `span_id`, `root_span_id`, `span_parents`, the container id fields,
...). The lines are NOT in `_pagination_key` order: spans mode pages newest first, traces mode
writes chunks of root traces from concurrent workers. So a reader must resume by position in the
files, not by key (`Container.row_keys = "file_order"` says so). bt files carry no checksums:
nothing here can tell a tampered row from a real one; a truncated line is refused as malformed,
and fewer rows than bt's own `items_done` count as a missing or truncated part."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from braintrust_migrate import __version__
from braintrust_migrate.archive import layout
from braintrust_migrate.config import ConfigError
from braintrust_migrate.engine.resources import STREAMS

OBJECT_TYPES = ("project_logs", "experiment", "dataset")
SPEC = "spec.json"
STATE = "state.json"
BT_MANIFEST = "manifest.json"
DATA_DIR = "data"
LEGACY_FILES = ("data.jsonl", "data.ndjson")
_PART = re.compile(r"part-(\d+)\.jsonl")
_MAX_DEPTH = 5  # ROOT/<type>/<name>/<direction>/<scope>/spec_<hash>: the deepest layout
# The id field each object type's rows carry for their container.
_ID_FIELD = {"project_logs": "project_id", "experiment": "experiment_id", "dataset": "dataset_id"}


@dataclass(frozen=True)
class BtSyncFolder:
    """One `bt sync pull` run: what it pulled and its row files, in order."""

    root: Path  # the folder the user named; `files` and error messages are relative to it
    spec_dir: Path
    object_type: str  # project_logs | experiment | dataset
    object_name: str  # as given to bt: a name or an id
    object_ref: str
    status: str  # bt's run status: "completed" once the pull finished
    items_done: int | None  # rows bt recorded as written
    spec: dict[str, Any]
    files: tuple[Path, ...]

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def iter_rows(self) -> Generator[dict[str, Any], None, None]:
        """Every row in file order, one line at a time (blank lines skipped)."""
        for path in self.files:
            for _, row in self._lines(path):
                yield row

    def _lines(self, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    row = None
                if not isinstance(row, dict):
                    raise ConfigError(f"{self.relative(path)}:{number}: not a JSON object")
                yield number, row

    def count_rows(self) -> list[int]:
        """Rows per file, parsing every line: a malformed one fails here, before any write."""
        return [sum(1 for _ in self._lines(path)) for path in self.files]


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def _pull_spec(spec_dir: Path) -> dict[str, Any] | None:
    """bt's spec of a pull run in `spec_dir` (spec.json, or the copy inside manifest.json)."""
    spec = _read_json(spec_dir / SPEC) if (spec_dir / SPEC).is_file() else None
    if not isinstance(spec, dict):
        manifest = _read_json(spec_dir / BT_MANIFEST) if (spec_dir / BT_MANIFEST).is_file() else None
        spec = manifest.get("spec") if isinstance(manifest, dict) else None
    if not isinstance(spec, dict) or spec.get("object_type") not in OBJECT_TYPES:
        return None
    if spec.get("direction") != "pull" or not isinstance(spec.get("object_name"), str):
        return None
    return spec


def _row_files(spec_dir: Path) -> list[Path]:
    data = spec_dir / DATA_DIR
    if data.is_dir():
        parts = [
            (int(m.group(1)), p) for p in data.iterdir() if (m := _PART.fullmatch(p.name)) and p.is_file()
        ]
        return [p for _, p in sorted(parts)]  # by number: part-1000000 follows part-999999
    return [spec_dir / name for name in LEGACY_FILES if (spec_dir / name).is_file()]


def _spec_dirs(path: Path, depth: int = 0) -> Iterator[Path]:
    if _pull_spec(path) is not None:
        yield path
        return
    if depth >= _MAX_DEPTH:
        return
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        yield from _spec_dirs(child, depth + 1)


def detect(path: Path) -> BtSyncFolder | None:
    """The bt sync pull run at `path` (its root, one object's folder, a spec dir or its data/);
    None when `path` is not one. Several runs under `path` are ambiguous: a ConfigError names them."""
    path = Path(path)
    if not path.is_dir():
        return None
    ours = _read_json(path / layout.MANIFEST) if (path / layout.MANIFEST).is_file() else None
    if isinstance(ours, dict) and ours.get("format") == layout.FORMAT:
        return None
    if path.name == DATA_DIR and _pull_spec(path.parent) is not None:
        found = [path.parent]
    else:
        found = list(_spec_dirs(path))
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(_rel(p, path) for p in found)
        raise ConfigError(f"{path} holds {len(found)} bt sync pulls ({names}): name one of them")
    return _load(path, found[0])


def _rel(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix() or "."
    except ValueError:
        return path.as_posix()


def _load(root: Path, spec_dir: Path) -> BtSyncFolder:
    spec = _pull_spec(spec_dir) or {}
    state = _read_json(spec_dir / STATE)
    manifest = _read_json(spec_dir / BT_MANIFEST)
    record = state if isinstance(state, dict) else manifest if isinstance(manifest, dict) else {}
    items = record.get("items_done")
    files = _row_files(spec_dir)
    return BtSyncFolder(
        root=root,
        spec_dir=spec_dir,
        object_type=spec["object_type"],
        object_name=spec["object_name"],
        object_ref=str(spec.get("object_ref") or f"{spec['object_type']}:{spec['object_name']}"),
        status=str(record.get("status") or "unknown"),
        items_done=items if isinstance(items, int) else None,
        spec=spec,
        files=tuple(files),
    )


def _first_id(folder: BtSyncFolder, field: str) -> str | None:
    with closing(folder.iter_rows()) as rows:  # closes the open part at once
        for row in rows:
            value = row.get(field)
            return value if isinstance(value, str) and value else None
    return None


def _synthetic_id(folder: BtSyncFolder, what: str) -> str:
    digest = hashlib.sha256(f"{what}\0{folder.object_ref}".encode()).hexdigest()
    return f"btsync-{what}-{digest[:24]}"


def synthesize(
    folder: BtSyncFolder,
    *,
    project_name: str,
    container_name: str | None = None,
    org_name: str = "bt-sync",
    allow_incomplete: bool = False,
) -> tuple[layout.Manifest, dict[str, list[dict[str, Any]]]]:
    """An export-like manifest presenting the pulled rows as one container, and its objects per kind.

    project_logs rows belong to the project itself; an experiment or dataset gets its own object
    named `container_name` in project `project_name`. Ids are the ones the rows carry (so the
    source ids are kept), or stable synthetic ones when rows lack them. Part paths point at bt's own
    files, relative to `folder.root`; `files` stays empty: bt records no sha256 to check."""
    where = _rel(folder.spec_dir, folder.root)
    if not folder.completed and not allow_incomplete:
        raise ConfigError(
            f"{where}: this bt sync pull did not finish (status {folder.status}): rerun the same "
            "`bt sync pull` command to complete it"
        )
    if folder.object_type != "project_logs" and not container_name:
        raise ConfigError(f"{where}: name the destination {folder.object_type} for these rows")
    counts = folder.count_rows()
    total = sum(counts)
    if folder.items_done is not None and total < folder.items_done:
        raise ConfigError(
            f"{where}: holds {total} rows but bt recorded {folder.items_done} (a part is missing or truncated)"
        )
    kind = folder.object_type
    stream = STREAMS[kind]
    project_id = _first_id(folder, "project_id") or _synthetic_id(folder, "project")
    project = {"id": project_id, "name": project_name}
    objects: dict[str, list[dict[str, Any]]] = {"project": [project]}
    if kind == "project_logs":
        container_id, name = project_id, project_name
    else:
        container_id = _first_id(folder, _ID_FIELD[kind]) or _synthetic_id(folder, kind)
        name = container_name or folder.object_name
        objects[stream.container] = [{"id": container_id, "name": name, "project_id": project_id}]
    parts = [
        layout.Part(path=folder.relative(path), rows=rows)
        for path, rows in zip(folder.files, counts, strict=True)
    ]
    # bt does not write rows in key order: they resume by position, not by bt's keys.
    container = layout.Container.model_validate(
        {
            "kind": kind,
            "id": container_id,
            "name": name,
            "project": project_name,
            "parts": parts,
            "complete": folder.completed,
            "row_keys": "file_order",
        }
    )
    manifest = layout.Manifest(
        tool_version=__version__,
        created_at=datetime.now(UTC).isoformat(),
        source_org={"id": _synthetic_id(folder, "org"), "name": org_name, "api_url": None},
        selection={
            "resources": [stream.selected_as],
            "projects": [project_name],
            "created_after": None,
            "created_before": None,
            "bt_sync": {
                key: folder.spec.get(key) for key in ("object_ref", "scope", "filter", "limit", "page_size")
            },
        },
        objects={k: len(v) for k, v in objects.items()},
        containers=[container],
    )
    return manifest, objects
