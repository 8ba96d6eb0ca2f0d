"""The export folder's layout and manifest: the one contract between `export` (which writes
a folder) and `FolderSource` (which reads one for `import` and `verify --from`).

    DIR/manifest.json                      written last, atomically: what is in the folder
    DIR/org.json                           the source organization object
    DIR/users.json                         the source org's users (id, email, names): for mapping
    DIR/objects/<kind>.json                every exported object of that kind, as the API lists it
                                           (source ids kept, so references resolve); secret
                                           values are never among them
    DIR/rows/<stream>/<container id>/part-NNNNNN.jsonl[.gz]
                                           live rows in `_pagination_key` order, one row per
                                           line as BTQL returns it (comments inside their row);
                                           an incremental export appends parts, so a later
                                           part may hold a newer version of an earlier row
    DIR/rows/<stream>/<container id>/at-<version>/part-NNNNNN.jsonl[.gz]
                                           a pinned dataset version: its rows as of that version
    DIR/attachments/<sha256 of the key>    attachment bytes (with --copy-attachments)
    DIR/.export/                           work in progress (resume journal); not part of
                                           the export, never listed in the manifest

Every file the manifest lists carries its size, row count (JSON Lines) and sha256 of the
bytes as stored (compressed, when compressed). A reader checks all of them before it hands
out a single row."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

FORMAT = "braintrust-migrate-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ORG_FILE = "org.json"
USERS_FILE = "users.json"
OBJECTS_DIR = "objects"
ROWS_DIR = "rows"
ATTACHMENTS_DIR = "attachments"
WORK_DIR = ".export"
PART_PREFIX = "part-"
VERSION_PREFIX = "at-"

Compression = Literal["none", "gzip"]
SUFFIX: dict[str, str] = {"none": ".jsonl", "gzip": ".jsonl.gz"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")  # a newer minor writer may add fields: kept, not refused


class FileEntry(_Model):
    sha256: str
    bytes: int
    rows: int | None = None  # JSON Lines files: lines (rows)


class Part(_Model):
    path: str  # relative to the folder, with "/" separators
    rows: int
    first_key: str | None = None
    last_key: str | None = None  # the resume point after this part


class Container(_Model):
    """One event container's rows: its stream kind, source id, and the parts in order."""

    kind: str  # the stream kind (dataset | experiment | project_logs)
    id: str
    name: str
    project: str | None = None
    parts: list[Part] = Field(default_factory=list)
    # Pinned versions (datasets): version -> its parts (rows as of that version).
    versions: dict[str, list[Part]] = Field(default_factory=dict)
    last_key: str | None = None  # the newest `_pagination_key` exported (incremental exports go on from it)
    complete: bool = False
    # Foreign folders (bt sync pull) are not in key order: their rows resume by position.
    row_keys: Literal["pagination_key", "file_order"] = "pagination_key"


class AttachmentEntry(_Model):
    path: str
    filename: str | None = None
    content_type: str | None = None
    bytes: int


class NeedsValue(_Model):
    """An object whose secret value the export could not hold: give it with --secrets-file."""

    type: str
    section: str
    name: str
    project: str | None = None


class Unreadable(_Model):
    type: str
    what: str
    message: str


class Manifest(_Model):
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    tool_version: str
    created_at: str
    source_org: dict[str, Any]  # {"id", "name", "api_url"}
    selection: dict[str, Any]  # resources, projects, created_after, created_before
    compression: Compression = "none"
    copy_attachments: bool = False
    objects: dict[str, int] = Field(default_factory=dict)  # kind -> objects exported
    containers: list[Container] = Field(default_factory=list)
    attachments: dict[str, AttachmentEntry] = Field(default_factory=dict)  # source key -> file
    unreadable: list[Unreadable] = Field(default_factory=list)
    needs_values: list[NeedsValue] = Field(default_factory=list)
    files: dict[str, FileEntry] = Field(default_factory=dict)  # every file but the manifest


def objects_path(kind: str) -> str:
    return f"{OBJECTS_DIR}/{kind}.json"


def container_dir(kind: str, container_id: str) -> str:
    return f"{ROWS_DIR}/{kind}/{container_id}"


def part_name(index: int, compression: Compression) -> str:
    return f"{PART_PREFIX}{index:06d}{SUFFIX[compression]}"


def version_dir(kind: str, container_id: str, version: str) -> str:
    return f"{container_dir(kind, container_id)}/{VERSION_PREFIX}{version}"


def attachment_path(key: str) -> str:
    return f"{ATTACHMENTS_DIR}/{hashlib.sha256(key.encode()).hexdigest()}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file, fsync'd, then renamed over `path`: whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def dump_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
