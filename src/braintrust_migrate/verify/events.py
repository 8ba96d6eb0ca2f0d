"""Row parity of event containers: counts and an order-independent digest of every row's
content on both sides, streamed concurrently in flat memory; the differing row ids when they
disagree."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import orjson

from braintrust_migrate.engine.events.stream import comment_text
from braintrust_migrate.engine.events.transform import KEPT
from braintrust_migrate.engine.refs import POLYMORPHIC_KINDS
from braintrust_migrate.source import Source
from braintrust_migrate.source.reader import Window
from braintrust_migrate.verify.leaks import LeakLog

SAMPLE_IDS = 20
BUCKETS = 4096  # per container side: a few rows per differing bucket are re-read, not all
BUCKET_MASK = BUCKETS - 1
DIGEST_MASK = (1 << 64) - 1
COUNT_UNIT = 1 << 64
_ATTACHMENT = b'"braintrust_attachment"'
# The kept fields but origin, which is compared in destination terms.
_KEPT = {kind: tuple(k for k in kept if k != "origin") for kind, kept in KEPT.items()}


@dataclass
class ContainerParity:
    kind: str
    name: str
    source_id: str
    dest_id: str | None
    source_rows: int = 0
    dest_rows: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    missing_count: int = 0
    extra_count: int = 0
    differing_count: int = 0
    sampled: int | None = None

    @property
    def ok(self) -> bool:
        return (
            self.dest_id is not None
            and self.source_rows == self.dest_rows
            and not (self.missing_count or self.extra_count or self.differing_count)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "container": self.kind,
            "name": self.name,
            "source_id": self.source_id,
            "dest_id": self.dest_id,
            "ok": self.ok,
            "source_rows": self.source_rows,
            "dest_rows": self.dest_rows,
            "missing": self.missing_count,
            "extra": self.extra_count,
            "differing": self.differing_count,
            "missing_sample": self.missing[:SAMPLE_IDS],
            "extra_sample": self.extra[:SAMPLE_IDS],
            "differing_sample": self.differing[:SAMPLE_IDS],
            "sampled_rows": self.sampled,
        }


def _attachments_without_keys(value: Any) -> Any:
    # A copied attachment gets a new key in the destination: compare what it is, not where.
    if isinstance(value, dict):
        if value.get("type") == "braintrust_attachment":
            return {k: v for k, v in value.items() if k != "key"}
        return {k: _attachments_without_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_attachments_without_keys(v) for v in value]
    return value


def already_destination(_kind: str, object_id: str) -> str:
    """Destination rows already hold destination ids."""
    return object_id


def row_content(
    row: dict[str, Any], kind: str, translate: Callable[[str, str], str | None]
) -> dict[str, Any]:
    """What must be equal between a source row and its copy, in destination terms (attachment
    keys are left out when it is serialised, by `content_bytes`)."""
    get = row.get
    content = {k: value for k in _KEPT[kind] if (value := get(k)) is not None}
    origin = get("origin")
    if isinstance(origin, dict):
        target = POLYMORPHIC_KINDS.get(str(origin.get("object_type")))
        mapped = translate(target, str(origin.get("object_id"))) if target else None
        content["origin"] = {
            "object_type": origin.get("object_type"),
            "id": origin.get("id"),
            "object_id": mapped,
        }
    comments = get("comments")
    if comments:
        texts = sorted(t for t in (comment_text(c) for c in comments) if t is not None)
        if texts:
            content["comments"] = texts
    return content


def content_bytes(content: dict[str, Any]) -> bytes:
    """One canonical serialisation; the walk that drops attachment keys only runs on the rare
    row whose text names an attachment (an attachment dict always serialises with that string)."""
    data = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    if _ATTACHMENT in data:
        data = orjson.dumps(_attachments_without_keys(content), option=orjson.OPT_SORT_KEYS)
    return data


def row_hash(content: dict[str, Any]) -> int:
    return int.from_bytes(blake2b(content_bytes(content), digest_size=8).digest(), "big")


async def _pages(
    source: Source, kind: str, container: str, page: int, window: Window
) -> AsyncIterator[list[dict[str, Any]]]:
    # No read-ahead: measured, it added a page per side in memory and no speed (CPU-bound).
    async for chunk in source.rows(kind, container, page, window).pages():
        yield chunk.rows


async def _rows(
    source: Source, kind: str, container: str, page: int, window: Window
) -> AsyncIterator[dict[str, Any]]:
    async for chunk in source.rows(kind, container, page, window).pages():
        for row in chunk.rows:
            yield row


@dataclass
class _Folded:
    """One side of a container folded into per-bucket sums of (id, content) digests: equal
    buckets hold the same rows (to a 2^-64 chance), whatever order they were read in."""

    rows: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)


async def _fold(
    source: Source,
    kind: str,
    container: str,
    page: int,
    window: Window,
    content: Callable[[dict[str, Any]], dict[str, Any]],
    leaks: LeakLog | None = None,
) -> _Folded:
    folded = _Folded()
    buckets = folded.buckets
    async for rows in _pages(source, kind, container, page, window):
        for row in rows:
            row_id = str(row["id"])
            # Both sides are folded in this process, so its (keyed, 64-bit) hash is the same on
            # both; the count rides above the digest: a bucket's sum differs if either does.
            digest = hash((row_id, content_bytes(content(row)))) & DIGEST_MASK
            buckets[hash(row_id) & BUCKET_MASK] += digest + COUNT_UNIT
        if leaks is not None:
            leaks.scan_rows(kind, container, rows)
        folded.rows += len(rows)
    return folded


async def _hashes(
    source: Source,
    kind: str,
    container: str,
    page: int,
    window: Window,
    content: Callable[[dict[str, Any]], dict[str, Any]],
    only: set[int],
) -> dict[str, int]:
    """Row id -> content digest of the rows in the buckets `only` (those that disagree)."""
    hashes: dict[str, int] = {}
    async for rows in _pages(source, kind, container, page, window):
        for row in rows:
            row_id = str(row["id"])
            if hash(row_id) & BUCKET_MASK in only:
                hashes[row_id] = row_hash(content(row))
    return hashes


def _compare(parity: ContainerParity, source: dict[str, int], dest: dict[str, int]) -> None:
    missing = [i for i in source if i not in dest]
    extra = [i for i in dest if i not in source]
    differing = [i for i, h in source.items() if i in dest and dest[i] != h]
    parity.missing_count, parity.extra_count, parity.differing_count = (
        len(missing),
        len(extra),
        len(differing),
    )
    parity.missing, parity.extra, parity.differing = (
        missing[:SAMPLE_IDS],
        extra[:SAMPLE_IDS],
        differing[:SAMPLE_IDS],
    )


async def compare_container(
    source: Source,
    dest: Source,
    parity: ContainerParity,
    translate: Callable[[str, str], str | None],
    *,
    page: int,
    window: Window,
    sample: int | None = None,
    leaks: LeakLog | None = None,
) -> ContainerParity:
    """Compare one container; every destination row read is also scanned into `leaks`.

    Memory stays flat: a first pass folds each side into bucket sums; only when buckets
    disagree are both sides read again, keeping the rows of those buckets by id to name them."""
    if parity.dest_id is None:
        parity.source_rows = await source.count(parity.kind, parity.source_id, window) or 0
        parity.missing_count = parity.source_rows
        return parity
    if sample:
        return await _compare_sample(
            source, dest, parity, translate, page=page, window=window, sample=sample, leaks=leaks
        )

    def content(row: dict[str, Any]) -> dict[str, Any]:
        return row_content(row, parity.kind, translate)

    def dest_content(row: dict[str, Any]) -> dict[str, Any]:
        return row_content(row, parity.kind, already_destination)

    src, dst = await asyncio.gather(
        _fold(source, parity.kind, parity.source_id, page, window, content),
        _fold(dest, parity.kind, parity.dest_id, page, window, dest_content, leaks),
    )
    parity.source_rows, parity.dest_rows = src.rows, dst.rows
    disagree = {b for b in range(BUCKETS) if src.buckets[b] != dst.buckets[b]}
    if disagree:
        src_hashes, dst_hashes = await asyncio.gather(
            _hashes(source, parity.kind, parity.source_id, page, window, content, disagree),
            _hashes(dest, parity.kind, parity.dest_id, page, window, dest_content, disagree),
        )
        _compare(parity, src_hashes, dst_hashes)
    return parity


async def _compare_sample(
    source: Source,
    dest: Source,
    parity: ContainerParity,
    translate: Callable[[str, str], str | None],
    *,
    page: int,
    window: Window,
    sample: int,
    leaks: LeakLog | None = None,
) -> ContainerParity:
    """Counts of both sides, plus `sample` random source rows compared in full."""
    assert parity.dest_id is not None
    src_count, dst_count = await asyncio.gather(
        source.count(parity.kind, parity.source_id, window),
        dest.count(parity.kind, parity.dest_id, window),
    )
    parity.source_rows, parity.dest_rows = src_count or 0, dst_count or 0
    ids: list[str] = []
    seen = 0
    rng = random.Random(parity.source_id)
    async for row in _rows(source, parity.kind, parity.source_id, page, window):
        seen += 1  # reservoir sampling: every row has the same chance, in one pass
        if len(ids) < sample:
            ids.append(str(row["id"]))
        elif (slot := rng.randrange(seen)) < sample:
            ids[slot] = str(row["id"])
    parity.sampled = len(ids)
    picked_src = await source.by_ids(parity.kind, parity.source_id, ids)
    picked_dst = await dest.by_ids(parity.kind, parity.dest_id, ids)
    if leaks is not None:
        for row in picked_dst.values():
            leaks.scan_row(parity.kind, parity.dest_id, row)
    src = {i: row_hash(row_content(r, parity.kind, translate)) for i, r in picked_src.items()}
    dst = {i: row_hash(row_content(r, parity.kind, already_destination)) for i, r in picked_dst.items()}
    missing = [i for i in src if i not in dst]
    differing = [i for i in src if i in dst and dst[i] != src[i]]
    parity.missing, parity.missing_count = missing[:SAMPLE_IDS], len(missing)
    parity.differing, parity.differing_count = differing[:SAMPLE_IDS], len(differing)
    if parity.source_rows != parity.dest_rows and not (missing or differing):
        parity.extra_count = max(0, parity.dest_rows - parity.source_rows)
    return parity
