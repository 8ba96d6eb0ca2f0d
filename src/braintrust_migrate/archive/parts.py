"""Part files and the export's resume journal.

A part is written under a temporary name, fsync'd, then renamed: a part file on disk is whole.
Only what the journal records counts: a part renamed but not journalled (a kill in between)
is written again by the resumed export."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from braintrust_migrate.archive.layout import Compression, part_name

PART_ROWS = 50_000
PART_BYTES = 64 << 20  # uncompressed bytes of rows per part
# gzip level 6: about 3x the speed of level 9 for a few percent larger files; exports are
# bulk data where write speed matters more than the last bytes.
GZIP_LEVEL = 6
JOURNAL = "journal.jsonl"


class _Hashing:
    """A write-only file that hashes and counts what is stored (after compression)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.bytes += len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


@dataclass
class ClosedPart:
    path: str  # relative to the export folder
    rows: int
    first_key: str | None
    last_key: str | None
    sha256: str
    bytes: int
    raw_bytes: int  # the rows' JSON bytes before compression

    def record(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "first_key": self.first_key,
            "last_key": self.last_key,
            "sha256": self.sha256,
            "bytes": self.bytes,
        }


class PartWriter:
    """Rows of one container (or one pinned version) into numbered parts under `rel_dir`."""

    def __init__(self, root: Path, rel_dir: str, compression: Compression, next_index: int) -> None:
        self.root, self.rel_dir, self.compression = root, rel_dir, compression
        self.index = next_index
        self._handle: IO[bytes] | None = None
        self._hashing: _Hashing | None = None
        self._out: Any = None
        self._tmp: Path | None = None
        self.rows = 0
        self.raw = 0
        self.first_key: str | None = None
        self.last_key: str | None = None

    def _open(self) -> None:
        folder = self.root / self.rel_dir
        folder.mkdir(parents=True, exist_ok=True)
        self._tmp = folder / f".{part_name(self.index, self.compression)}.tmp"
        self._handle = self._tmp.open("wb")
        self._hashing = _Hashing(self._handle)
        if self.compression == "gzip":
            # mtime=0: the same rows give the same bytes (and sha256) on every export.
            self._out = gzip.GzipFile(fileobj=self._hashing, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
        else:
            self._out = self._hashing
        self.rows = self.raw = 0
        self.first_key = self.last_key = None

    def write(self, row: dict[str, Any]) -> ClosedPart | None:
        """Add one row; returns the part this row closed, if it filled one."""
        if self._out is None:
            self._open()
        line = orjson.dumps(row) + b"\n"
        self._out.write(line)
        self.rows += 1
        self.raw += len(line)
        key = row.get("_pagination_key")
        if isinstance(key, str):
            self.first_key = self.first_key or key
            self.last_key = key
        if self.rows >= PART_ROWS or self.raw >= PART_BYTES:
            return self.close()
        return None

    def close(self) -> ClosedPart | None:
        """Close the open part (whole, renamed into place); None when none is open."""
        if self._out is None or self._handle is None or self._hashing is None or self._tmp is None:
            return None
        if self.compression == "gzip":
            self._out.close()  # writes the gzip trailer through the hashing file
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        name = part_name(self.index, self.compression)
        os.replace(self._tmp, self._tmp.with_name(name))
        closed = ClosedPart(
            f"{self.rel_dir}/{name}",
            self.rows,
            self.first_key,
            self.last_key,
            self._hashing.digest.hexdigest(),
            self._hashing.bytes,
            self.raw,
        )
        self._out = self._handle = self._hashing = self._tmp = None
        self.index += 1
        return closed

    def abort(self) -> None:
        """Drop the open part (an interrupted export): its temporary file goes."""
        for closer in (self._out if self.compression == "gzip" else None, self._handle):
            if closer is not None:
                with contextlib.suppress(OSError):
                    closer.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._out = self._handle = self._hashing = self._tmp = None


class Journal:
    """Append-only JSON Lines, one fsync'd line per event: parts closed, versions and
    attachments finished. Lines cut short by a kill are ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):  # a line a kill cut short: appends go after it
                with path.open("r+b") as handle:
                    handle.truncate(data.rfind(b"\n") + 1)
        self._handle = path.open("ab")

    def read(self) -> list[dict[str, Any]]:
        entries = []
        with self.path.open("rb") as handle:
            for line in handle:
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a line a kill cut short: its part is written again
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def append(self, entry: dict[str, Any]) -> None:
        self._handle.write(orjson.dumps(entry) + b"\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def reset(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)
        self._handle = self.path.open("ab")
