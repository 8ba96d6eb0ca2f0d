"""One container's rows, source to destination: the next page is read while the last is
written, several inserts are in flight, memory is bounded by a shared byte budget, and
the checkpoint only moves past rows the destination has acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from braintrust_migrate.client import ApiClient, ApiError
from braintrust_migrate.engine.events.attachments import Attachments, rewrite_attachments
from braintrust_migrate.engine.events.comments import CommentCopier
from braintrust_migrate.engine.events.comments import comment_text as comment_text  # verify imports it here
from braintrust_migrate.engine.events.state import EventState, StreamState
from braintrust_migrate.engine.events.transform import RowNotes, to_insert
from braintrust_migrate.engine.events.versions import PinnedDataset
from braintrust_migrate.engine.events.writer import BatchResult, Encoded, Inserter, encode
from braintrust_migrate.engine.resources import STREAMS
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.source import RowReader, Source
from braintrust_migrate.source.reader import NoBtql, Page, Window

log = get_logger(__name__)

INSERTS_PER_STREAM = 4
FAILED_SAMPLE = 50


# Rows are held parsed (Python objects take about 3x their JSON), so a page is charged that.
PARSED_FACTOR = 3


# While rows stream, the cyclic garbage collector runs less often: pages in flight hold millions of
# parsed objects that each collection walks again (~17 us of CPU per row at the defaults). Measured
# on the events bench: (10_000, 10, 10) keeps most of the gain (52 -> 56 us/row against 50_000) at
# 199 MiB peak instead of 239 (garbage in reference cycles waits for a collection meanwhile).
RARE_GC = (10_000, 10, 10)
_gc_users: list[tuple[int, int, int]] = []  # thresholds saved by the first stream that raised them


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """Raise the collector's thresholds while any stream runs (streams share one loop, so nest)."""
    if not _gc_users:
        saved = gc.get_threshold()
        gc.set_threshold(*(max(now, rare) for now, rare in zip(saved, RARE_GC, strict=True)))
        _gc_users.append(saved)
    else:
        _gc_users.append(_gc_users[0])
    try:
        yield
    finally:
        saved = _gc_users.pop()
        if not _gc_users:
            gc.set_threshold(*saved)


class ByteBudget:
    """At most `limit` bytes of rows read but not yet written, across every stream."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = asyncio.Condition()

    async def acquire(self, amount: int) -> int:
        amount = min(amount, self.limit)  # one page larger than the budget still goes, alone
        async with self._cond:
            await self._cond.wait_for(lambda: self.used + amount <= self.limit)
            self.used += amount
            self.peak = max(self.peak, self.used)
        return amount

    async def hold(self, json_bytes: int) -> int:
        """Room for a page of `json_bytes` of JSON, held parsed until written; returns the charge."""
        return await self.acquire(json_bytes * PARSED_FACTOR)

    async def release(self, amount: int) -> None:
        async with self._cond:
            self.used -= amount
            self._cond.notify_all()


@dataclass
class StreamSpec:
    kind: str  # project_logs | experiment | dataset
    src_id: str
    dest_id: str
    name: str
    project: str | None
    pins: list[int] = field(default_factory=list)  # source dataset versions others point at


@dataclass
class StreamOutcome:
    spec: StreamSpec
    status: str = "done"
    rows_read: int = 0
    rows_written: int = 0
    rows_failed: int = 0
    bytes: int = 0
    comments: int = 0
    offloaded: int = 0
    expected_rows: int | None = None
    failed_rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    reader: str = "btql"
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": STREAMS[self.spec.kind].report_type,
            "container": self.spec.kind,
            "name": self.spec.name,
            "project": self.spec.project,
            "source_id": self.spec.src_id,
            "dest_id": self.spec.dest_id,
            "status": self.status,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_failed": self.rows_failed,
            "bytes": self.bytes,
            "comments_copied": self.comments,
            "rows_offloaded_to_attachments": self.offloaded,
            "expected_rows": self.expected_rows,
            "failed_rows": self.failed_rows[:FAILED_SAMPLE],
            "notes": self.notes,
            "duration_s": round(self.duration_s, 2),
            "reader": self.reader,
            "error": self.error,
        }


@dataclass
class StreamEnv:
    source: Source
    dest: ApiClient
    events: EventState
    budget: ByteBudget
    resolve: Callable[[str, str], str | None]
    page_size: int
    max_rows: int
    max_bytes: int
    window: Window
    fresh: bool
    attachments: Attachments | None = None
    copy_attachments: bool = False
    on_rows: Callable[[StreamSpec, int, int], None] = lambda spec, rows, nbytes: None
    # Until the objects a page's rows name (origins) are written: rows start before every object.
    ready: Callable[[str, list[dict[str, Any]]], Awaitable[None]] | None = None


class _Seen:
    def __init__(self, events: EventState, stream: str) -> None:
        self.events, self.stream = events, stream

    def has(self, row_id: str) -> bool:
        return self.events.seen(self.stream, row_id)


class Stream:
    def __init__(self, env: StreamEnv, spec: StreamSpec) -> None:
        self.env, self.spec = env, spec
        self.state: StreamState = env.events.load(spec.kind, spec.src_id, spec.dest_id, fresh=env.fresh)
        self.outcome = StreamOutcome(spec)
        self.notes = RowNotes()
        self.inserter = Inserter(
            env.dest,
            spec.kind,
            spec.dest_id,
            max_rows=env.max_rows,
            max_bytes=env.max_bytes,
            attachments=env.attachments,
        )
        self._slots = asyncio.Semaphore(INSERTS_PER_STREAM)
        self._done: dict[int, tuple[str | None, bool]] = {}  # batch seq -> (last key, ok)
        self._next_commit = 0
        self._blocked = False
        self._page_seen: dict[int, list[str]] = {}  # /fetch: ids first seen on the page a batch ends
        # Ids with a failure recorded in the state (earlier runs', then this one's): cleared once written.
        self._failures = {str(f["row_id"]) for f in env.events.failures(self.state.stream)}

    async def run(self) -> StreamOutcome:
        started = time.perf_counter()
        self.state.status = "running"
        self.env.events.save(self.state)
        try:
            with rare_collections():
                await self._pump()
        except ApiError as error:
            self.outcome.status, self.outcome.error = "failed", error.message
        self.outcome.duration_s = time.perf_counter() - started
        if self.outcome.status == "done" and (self._blocked or self.outcome.rows_failed):
            self.outcome.status = "failed"
        self.state.status = self.outcome.status
        self.env.events.save(self.state)
        self._notes()
        return self.outcome

    async def _pump(self) -> None:
        pinned = PinnedDataset(self) if self.spec.pins else None  # its pinned versions first, in order
        if pinned and not await pinned.replay():
            return
        reader = self.env.source.rows(
            self.spec.kind, self.spec.src_id, self.env.page_size, self.env.window, self.state.checkpoint
        )
        queue: asyncio.Queue[tuple[Page, int] | None] = asyncio.Queue(maxsize=2)
        producer = asyncio.create_task(self._produce(reader, queue))
        writes: set[asyncio.Task[None]] = set()
        seq = 0
        try:
            while (item := await queue.get()) is not None:
                page, held = item
                batches = await self._prepare(page)
                if not batches:  # every row filtered out (fetch duplicates): only the resume point moves
                    await self.env.budget.release(held)
                    self._page_seen[seq] = page.seen
                    self._done[seq] = (page.last_key, True)
                    seq += 1
                    self._advance()
                    continue
                # Where a later run resumes once a batch is acknowledged: the keyset key of its last
                # row; for /fetch, the page's cursor, valid only after the page's last batch.
                if self.outcome.reader == "btql":
                    resumes = [batch[-1].key for batch in batches]
                else:
                    resumes = [*[None] * (len(batches) - 1), page.last_key]
                    self._page_seen[seq + len(batches) - 1] = page.seen  # remembered once acknowledged
                page_left = [len(batches)]
                for batch, resume in zip(batches, resumes, strict=True):
                    await self._slots.acquire()
                    task = asyncio.create_task(self._write(seq, batch, resume, held, page_left))
                    writes.add(task)
                    task.add_done_callback(writes.discard)
                    seq += 1
            await producer
        except asyncio.CancelledError:
            # Ctrl-C / SIGTERM: writes in flight finish (below), so the checkpoint and the
            # report's counts match what the destination holds.
            self._save()
            raise
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer
            while not queue.empty():  # pages read but never written hold budget other streams need
                if (left := queue.get_nowait()) is not None:
                    await self.env.budget.release(left[1])
            if writes:
                await asyncio.gather(*writes, return_exceptions=True)
            self._save()
        if pinned and not self._blocked and not self.outcome.rows_failed:
            await pinned.finish()

    async def _produce(self, reader: RowReader, queue: asyncio.Queue[tuple[Page, int] | None]) -> None:
        try:
            try:
                await self._feed(reader.pages(), queue)
            except NoBtql:
                self.outcome.reader = "fetch"
                fetch = self.env.source.fetch_rows(
                    self.spec.kind,
                    self.spec.src_id,
                    self.env.page_size,
                    _Seen(self.env.events, self.state.stream),
                    self.env.window,
                    self.state.cursor,
                )
                await self._feed(fetch.pages(), queue)
        except asyncio.CancelledError:
            raise  # the consumer stopped: nobody waits for the end mark (a full queue would hang here)
        except BaseException:
            await queue.put(None)
            raise
        await queue.put(None)

    async def _feed(self, pages: AsyncIterator[Page], queue: asyncio.Queue[tuple[Page, int] | None]) -> None:
        async for page in pages:
            held = await self.env.budget.hold(page.nbytes)
            try:
                await queue.put((page, held))
            except asyncio.CancelledError:
                await self.env.budget.release(held)
                raise

    async def _prepare(self, page: Page) -> list[list[Encoded]]:
        if self.env.ready is not None:
            await self.env.ready(self.spec.kind, page.rows)
        self.outcome.rows_read += len(page.rows)
        self.outcome.bytes += page.nbytes
        self.state.rows_read += len(page.rows)
        self.state.bytes += page.nbytes
        kind, resolve, notes = self.spec.kind, self.env.resolve, self.notes
        attachments = self.env.attachments if self.env.copy_attachments else None
        if attachments is None:  # the common case, one tight loop per page
            items = [encode(to_insert(source, kind, resolve, notes), source) for source in page.rows]
            return self.inserter.batches(items)
        items = []
        for source in page.rows:
            row = to_insert(source, kind, resolve, notes)
            problems: list[str] = []
            await rewrite_attachments(row, attachments, problems)
            self.outcome.notes += problems[:5]
            items.append(encode(row, source))
        return self.inserter.batches(items)

    async def _write(
        self, seq: int, batch: list[Encoded], resume: str | None, held: int, page_left: list[int]
    ) -> None:
        ok = False
        try:
            result = await self.inserter.send(batch)
            comments_ok = await self._after_write(batch, result)
            ok = comments_ok and not result.failed
        except ApiError as error:
            self._fail(batch, error.message)
        finally:
            self._slots.release()
            self._done[seq] = (resume, ok)
            self._advance()
            page_left[0] -= 1
            if page_left[0] == 0:
                await self.env.budget.release(held)

    async def _after_write(self, batch: list[Encoded], result: BatchResult) -> bool:
        failed_ids = {row_id for row_id, _, _ in result.failed}
        for row_id, size, reason in result.failed:
            self.outcome.rows_failed += 1
            self.outcome.failed_rows.append({"row_id": row_id, "size": size, "reason": reason})
            self.env.events.record_failure(self.state.stream, row_id, size, reason)
            self._failures.add(row_id)
        self.outcome.rows_written += len(result.written)
        self.outcome.offloaded += result.offloaded
        self.state.rows_written += len(result.written)
        # Only rows with a failure on record (this run's or an earlier one's) have one to clear.
        if self._failures and (cleared := [r for r in result.written if r in self._failures]):
            self.env.events.clear_failure(self.state.stream, cleared)
            self._failures.difference_update(cleared)
        # Acknowledged: ours. --sync-deletes deletes only rows recorded here (~100 B/id, 1 commit/batch).
        self.env.events.mark_copied(self.state.stream, result.written)
        self.env.on_rows(self.spec, len(result.written), sum([i.size for i in batch]))
        written = [item for item in batch if item.row_id not in failed_ids] if failed_ids else batch
        comments_ok = await self._copy_comments(written)
        return comments_ok

    def _fail(self, batch: list[Encoded], reason: str) -> None:
        for item in batch:
            row_id = item.row_id
            self._failures.add(row_id)
            self.outcome.rows_failed += 1
            self.outcome.failed_rows.append({"row_id": row_id, "size": item.size, "reason": reason})
            self.env.events.record_failure(self.state.stream, row_id, item.size, reason)

    def _advance(self) -> None:
        """Move the checkpoint over the longest run of acknowledged batches; a failure stops it.
        Saved at every move (one small SQLite write), so a kill at any moment loses no
        acknowledged batch and a resume never reads one again."""
        moved = False
        while not self._blocked and self._next_commit in self._done:
            key, ok = self._done.pop(self._next_commit)
            if not ok:
                self._blocked = True
                break
            seen = self._page_seen.pop(self._next_commit, None)
            if seen:
                self.env.events.mark_seen(self.state.stream, seen)
            if key:
                if self.outcome.reader == "fetch":
                    self.state.cursor = key
                else:
                    self.state.checkpoint = key
                moved = True
            self._next_commit += 1
        if moved:
            self._save()

    def _save(self) -> None:
        self.env.events.save(self.state)

    async def _copy_comments(self, items: list[Encoded]) -> bool:
        """Comments of written rows, exactly once (see comments.py); False holds the checkpoint."""
        copier = CommentCopier(
            self.env.dest, self.spec.kind, self.spec.dest_id, self.env.events, self.state.stream
        )
        result = await copier.copy(items)
        self.outcome.comments += result.copied
        self.outcome.notes += [n for n in result.notes if n not in self.outcome.notes]
        return result.ok

    def _notes(self) -> None:
        if self.notes.origins_dropped:
            self.outcome.notes.append(
                f"{self.notes.origins_dropped} rows lost their origin (its container was not migrated)"
            )
        if self.notes.audit_rows:
            self.outcome.notes.append(
                f"{self.notes.audit_rows} rows have audit_data, which the API cannot write"
            )
        if self.notes.classified_rows:
            self.outcome.notes.append(
                f"{self.notes.classified_rows} rows have classifications, which the API cannot write"
            )
