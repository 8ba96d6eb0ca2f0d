"""Attachment blobs: copied from source to destination as a stream, and used to carry the
largest fields of a row too big for one insert request.

A live source fetches blobs only from URLs urlguard.DownloadGuard allows (its API's origin,
or public https hosts), every redirect hop included (source/live.py): a source cannot make
us fetch an internal address and copy its answer. A refused attachment keeps its source
reference and the container's notes say why."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from braintrust_migrate.client import ApiClient, ApiError, NotFoundError
from braintrust_migrate.engine.events.state import EventState
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.source import Source
from braintrust_migrate.urlguard import DownloadRefused

log = get_logger(__name__)

OFFLOADABLE = ("input", "output", "expected", "metadata", "context", "error")

KEY_NAMESPACE = uuid.UUID("5d0c1f8e-2b7a-4f43-9a6e-6b1f6c3e9d21")


class AttachmentsUnsupported(Exception):
    """The destination has no attachment endpoints."""


class TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"attachment of {size} bytes is over MIGRATION_ATTACHMENT_MAX_BYTES")
        self.size = size


class Attachments:
    def __init__(
        self,
        source: Source,
        dest: ApiClient,
        state: EventState,
        source_org: str,
        dest_org: str,
        max_bytes: int,
    ) -> None:
        self.source, self.dest, self.state = source, dest, state
        self.source_org, self.dest_org, self.max_bytes = source_org, dest_org, max_bytes
        self.copied = 0
        self.bytes = 0

    async def upload(
        self, data: AsyncIterator[bytes] | bytes, filename: str, content_type: str, key: str | None = None
    ) -> str:
        """Store bytes in the destination; returns the new key. Bytes are retried as a whole."""
        key = key or str(uuid.uuid4())
        if isinstance(data, bytes):
            return await self.dest.retrying(lambda: self._upload_once(data, filename, content_type, key))
        return await self._upload_once(data, filename, content_type, key)

    async def _upload_once(
        self, data: AsyncIterator[bytes] | bytes, filename: str, content_type: str, key: str
    ) -> str:
        try:
            signed = await self.dest.post_json(
                "/attachment",
                {"key": key, "filename": filename, "content_type": content_type, "org_id": self.dest_org},
            )
        except NotFoundError:
            raise AttachmentsUnsupported from None
        headers = {"Content-Type": content_type, **(signed.get("headers") or {})}
        await self.dest.put_blob(signed["signedUrl"], data, headers)
        await self.dest.post_json(
            "/attachment/status", {"key": key, "org_id": self.dest_org, "status": {"upload_status": "done"}}
        )
        return key

    async def copy(self, ref: dict[str, Any]) -> dict[str, Any]:
        """A destination reference for a source braintrust_attachment (copied once per key)."""
        src_key = str(ref.get("key"))
        done = self.state.attachment(src_key)
        if done is None:
            # The destination key follows from the source key and the org pair, so an upload
            # repeated after a kill (or from another state folder) lands on the same key: no orphans.
            key = str(uuid.uuid5(KEY_NAMESPACE, f"{self.source_org}:{self.dest_org}:{src_key}"))
            # A stream cannot be replayed: a failed transfer is retried whole, download included.
            done = await self.dest.retrying(lambda: self._copy_once(ref, src_key, key))
            self.state.mark_attachment(src_key, done)
            self.copied += 1
        return {**ref, "key": done}

    async def _copy_once(self, ref: dict[str, Any], src_key: str, key: str) -> str:
        filename = ref.get("filename") or "attachment"
        content_type = ref.get("content_type") or "application/octet-stream"
        stream, size = await self.source.attachment({**ref, "key": src_key}, self.source_org)
        try:
            if size is not None and size > self.max_bytes:
                raise TooLarge(size)
            return await self.upload(self._capped(stream), filename, content_type, key)
        finally:
            await stream.aclose()

    async def _capped(self, stream: Any) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in stream.aiter_bytes():
            total += len(chunk)
            if total > self.max_bytes:
                raise TooLarge(total)
            self.bytes += len(chunk)
            yield chunk

    async def offload(self, row: dict[str, Any], limit: int) -> dict[str, Any] | None:
        """Move the row's largest fields into attachments until it encodes under `limit`."""
        row = dict(row)
        sizes = sorted(
            ((len(orjson.dumps(row[f])), f) for f in OFFLOADABLE if row.get(f) is not None), reverse=True
        )
        for _, name in sizes:
            if len(orjson.dumps(row)) <= limit:
                break
            key = await self.upload(orjson.dumps(row[name]), f"{name}.json", "application/json")
            row[name] = {
                "type": "braintrust_attachment",
                "key": key,
                "filename": f"{name}.json",
                "content_type": "application/json",
            }
        return row if len(orjson.dumps(row)) <= limit else None


def attachment_refs(value: Any) -> list[dict[str, Any]]:
    """Every braintrust_attachment reference inside a value."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if value.get("type") == "braintrust_attachment" and value.get("key"):
            found.append(value)
        else:
            for item in value.values():
                found.extend(attachment_refs(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(attachment_refs(item))
    return found


async def rewrite_attachments(row: dict[str, Any], attachments: Attachments, problems: list[str]) -> None:
    """Replace each braintrust_attachment reference in place by its copied destination key."""
    for ref in attachment_refs(row):
        try:
            ref.update(await attachments.copy(ref))
        except (TooLarge, ApiError, AttachmentsUnsupported, DownloadRefused) as error:
            problems.append(f"row {row.get('id')}: attachment {ref.get('key')} not copied: {error}")
