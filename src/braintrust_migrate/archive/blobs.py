"""Attachment bytes into an export folder: streamed to a temporary file under the size cap,
fsync'd, then renamed to attachments/<sha256 of the key>: whole or absent."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from braintrust_migrate.archive import layout
from braintrust_migrate.source import Source


class TooLarge(Exception):
    pass


async def download(
    source: Source, root: Path, key: str, ref: dict[str, Any], org_id: str, cap: int
) -> dict[str, Any]:
    """The attachment `key` written into the folder; its journal entry."""
    rel = layout.attachment_path(key)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    blob, size = await source.attachment(ref, org_id)
    digest, total = hashlib.sha256(), 0
    try:
        if size is not None and size > cap:
            raise TooLarge(f"{size} bytes is over MIGRATION_ATTACHMENT_MAX_BYTES")
        with tmp.open("wb") as handle:
            async for chunk in blob.aiter_bytes():
                total += len(chunk)
                if total > cap:
                    raise TooLarge(f"over {cap} bytes (MIGRATION_ATTACHMENT_MAX_BYTES)")
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        await blob.aclose()
    return {
        "event": "attachment", "key": key, "path": rel, "filename": ref.get("filename"),
        "content_type": ref.get("content_type"), "bytes": total, "sha256": digest.hexdigest(),
    }  # fmt: skip
