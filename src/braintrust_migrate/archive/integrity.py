"""Checking an export folder before anything reads from it: the manifest's format, and every
file it lists (present, the listed size, the listed sha256), and no unlisted part or objects
file beside them. Runs before a single write anywhere; any problem is one line naming the file."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import orjson
from pydantic import ValidationError

from braintrust_migrate.archive.layout import (
    ATTACHMENTS_DIR,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    OBJECTS_DIR,
    ORG_FILE,
    PART_PREFIX,
    ROWS_DIR,
    SUFFIX,
    WORK_DIR,
    Manifest,
)
from braintrust_migrate.config import ConfigError
from braintrust_migrate.textsafe import printable

MANIFEST_CAP = 1 << 30  # a manifest is metadata; anything bigger is not one of ours


class ArchiveError(ConfigError):
    """An export folder that cannot be read as it is: the message is one line naming the file."""

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


def check(folder: Path) -> Manifest:
    """The folder's manifest, once every file it lists is verified (streamed hashing)."""
    manifest = read_manifest(folder)
    for rel in _referenced(manifest):
        if rel not in manifest.files:
            raise ArchiveError(f"{folder}/{MANIFEST}: it names {rel} but does not list its checksum")
    for rel in manifest.files:
        _safe(folder, rel)
    # Sizes first (a stat each): truncation shows before the slow part.
    for rel, entry in manifest.files.items():
        path = folder / rel
        if not path.is_file():
            raise ArchiveError(f"{rel}: missing from {folder} (the manifest lists it)")
        size = path.stat().st_size
        if size != entry.bytes:
            raise ArchiveError(
                f"{rel}: {size} bytes on disk, the manifest says {entry.bytes} (truncated or tampered)"
            )
    _no_strays(folder, manifest)
    for rel, entry in manifest.files.items():
        if sha256_of(folder / rel) != entry.sha256.lower():
            raise ArchiveError(f"{rel}: sha256 differs from the manifest (tampered or truncated)")
    return manifest


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ArchiveError(f"{folder}: not a folder (give the folder `export --to` wrote)")
    if not path.is_file():
        raise ArchiveError(f"{path}: missing: {folder} is not an export folder, or its export never finished")
    if path.stat().st_size > MANIFEST_CAP:
        raise ArchiveError(f"{path}: too large to be an export manifest")
    try:
        raw = orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError) as error:
        raise ArchiveError(f"{path}: not readable as JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ArchiveError(f"{folder} is not an export folder ({path} has no format {FORMAT!r})")
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArchiveError(f"{path}: format_version must be a positive integer, not {version!r}")
    if version > FORMAT_VERSION:
        raise ArchiveError(
            f"{folder} was written by a newer format (v{version}); this tool reads up to "
            f"v{FORMAT_VERSION}: upgrade braintrust-migrate"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ArchiveError(f"{path}: {where}: {first['msg']}") from None


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()  # chunked: bounded memory


def _referenced(manifest: Manifest) -> list[str]:
    """Files the reader will open: each must be listed (and so checked)."""
    paths = [ORG_FILE]
    for container in manifest.containers:
        paths += [part.path for part in container.parts]
        paths += [part.path for parts in container.versions.values() for part in parts]
    paths += [entry.path for entry in manifest.attachments.values()]
    return paths


def _safe(folder: Path, rel: str) -> None:
    """A listed path stays inside the folder: relative, "/"-separated, no "..", not in .export/."""
    pure = PurePosixPath(rel)
    bad = (
        not rel
        or "\\" in rel
        or pure.is_absolute()
        or any(part in ("..", ".", "") for part in rel.split("/"))
        or pure.parts[0] in (WORK_DIR, MANIFEST)
    )
    if bad:
        raise ArchiveError(f"{folder}/{MANIFEST}: lists {rel!r}, which is not a file inside the export")


def _is_part(name: str) -> bool:
    return name.startswith(PART_PREFIX) and name.endswith(tuple(SUFFIX.values()))


def _no_strays(folder: Path, manifest: Manifest) -> None:
    """No part, objects or attachment file on disk that the manifest does not list: it would be
    data the import silently leaves out (or a planted file)."""
    candidates: list[Path] = []
    rows = folder / ROWS_DIR
    if rows.is_dir():
        candidates += [p for p in rows.rglob(f"{PART_PREFIX}*") if _is_part(p.name)]
    objects = folder / OBJECTS_DIR
    if objects.is_dir():
        candidates += list(objects.glob("*.json"))
    attachments = folder / ATTACHMENTS_DIR
    if attachments.is_dir():
        candidates += [p for p in attachments.iterdir() if not p.name.startswith(".")]
    for path in sorted(candidates):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(f"{WORK_DIR}/") or rel in manifest.files:
            continue
        raise ArchiveError(
            f"{rel}: on disk but not in the manifest (an interrupted export, or a file added by hand): "
            "run the export again to finish it, or remove the file"
        )
