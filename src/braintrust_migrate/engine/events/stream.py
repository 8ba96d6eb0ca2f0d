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
from braintrust_migrate.engine.events.writer import BatchResult, Encoded, Inserter, Packed, encode
from braintrust_migrate.engine.resources import STREAMS
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.source import RowReader, Source
from braintrust_migrate.source.reader import NoBtql, Page, Window

log = get_logger(__name__)

INSERTS_PER_STREAM = 4
FAILED_SAMPLE = 50
SIZE_SLACK = 4096  # bytes of a request beyond its rows (envelope) that a page-level size may not use
ROUTE_SLACK = 64  # the cross-object body's envelope per destination container


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

    async def adjust(self, held: int, json_bytes: int) -> int:
        """A charge taken before a read, made what the page read needs; returns the new charge.
        It does not wait for room: the page is in memory already, so more is charged at once (the
        next reads wait for it) and less is given back."""
        charge = min(json_bytes * PARSED_FACTOR, self.limit)
        async with self._cond:
            self.used += charge - held
            self.peak = max(self.peak, self.used)
            if charge < held:
                self._cond.notify_all()
        return charge

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
    # Its destination container was created by this run: no comment can be there but this run's.
    new_dest: bool = False


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
    read_with: int = 0  # other containers read in the same shared stream

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
            "read_with": self.read_with,
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


@dataclass
class Member:
    """One container a stream copies, with its own checkpoint, counts and failures. A shared
    stream reads several in one keyset (their rows interleaved in `_pagination_key` order): each
    member's checkpoint moves to the key of every acknowledged batch that holds none of its
    failed rows, so a resume (shared or not) starts each container exactly where it stood."""

    spec: StreamSpec
    state: StreamState
    outcome: StreamOutcome
    failures: set[str]  # ids with a failure on record (earlier runs', then this one's)
    notes: RowNotes = field(default_factory=RowNotes)
    blocked: bool = False
    # Comments de-duplicated by this stream's own records, with no read of the destination: the
    # container is new (this run made it, this stream never ran before, no pinned versions that
    # write a row more than once) and no comment write has failed since (one may have landed).
    comments_local: bool = False


class Stream:
    """The rows of one container, or (`specs` of several) of several small ones read through one
    BTQL query and written through the cross-object insert."""

    def __init__(self, env: StreamEnv, specs: StreamSpec | list[StreamSpec]) -> None:
        self.env = env
        specs = [specs] if isinstance(specs, StreamSpec) else specs
        self.members: dict[str, Member] = {}
        for spec in specs:
            state = env.events.load(spec.kind, spec.src_id, spec.dest_id, fresh=env.fresh)
            failures = {str(f["row_id"]) for f in env.events.failures(state.stream)}
            member = Member(spec, state, StreamOutcome(spec), failures)
            member.comments_local = spec.new_dest and state.new and not spec.pins
            self.members[spec.src_id] = member
        self.first = next(iter(self.members.values()))
        self.shared = len(self.members) > 1
        self.spec = self.first.spec  # one container's stream (pinned versions, /fetch): that one
        self.inserter = Inserter(
            env.dest,
            self.spec.kind,
            None if self.shared else self.spec.dest_id,
            max_rows=env.max_rows,
            max_bytes=env.max_bytes,
            attachments=env.attachments,
            routes={m.spec.src_id: m.spec.dest_id for m in self.members.values()} if self.shared else None,
        )
        self._slots = asyncio.Semaphore(INSERTS_PER_STREAM)
        self._done: dict[int, tuple[str | None, set[str]]] = {}  # batch seq -> (last key, failed members)
        self._next_commit = 0
        self._page_seen: dict[int, list[str]] = {}  # /fetch: ids first seen on the page a batch ends
        self.reader = "btql"

    # One container's view, for what only a stream of one does (pinned dataset versions).
    @property
    def state(self) -> StreamState:
        return self.first.state

    @property
    def outcome(self) -> StreamOutcome:
        return self.first.outcome

    @property
    def notes(self) -> RowNotes:
        return self.first.notes

    @property
    def _blocked(self) -> bool:
        return all(m.blocked for m in self.members.values())

    @_blocked.setter
    def _blocked(self, value: bool) -> None:
        for member in self.members.values():
            member.blocked = value

    async def run(self) -> list[StreamOutcome]:
        started = time.perf_counter()
        for member in self.members.values():
            member.state.status = "running"
        self._save()
        error: str | None = None
        try:
            with rare_collections():
                await self._pump()
        except ApiError as failure:
            error = failure.message
        elapsed = time.perf_counter() - started
        outcomes = []
        for member in self.members.values():
            outcome = member.outcome
            outcome.duration_s, outcome.reader = elapsed, self.reader
            outcome.read_with = len(self.members) - 1
            if error is not None:
                outcome.status, outcome.error = "failed", error
            elif member.blocked or outcome.rows_failed:
                outcome.status = "failed"
            member.state.status = outcome.status
            self._notes(member)
            outcomes.append(outcome)
        self._save()
        return outcomes

    def _after_key(self) -> str | None:
        """Where the read starts: the earliest member's checkpoint (None: from the start)."""
        keys = [m.state.checkpoint for m in self.members.values()]
        return None if None in keys else min(k for k in keys if k is not None)

    def _reader(self) -> RowReader:
        env, spec = self.env, self.spec
        if not self.shared:
            return env.source.rows(spec.kind, spec.src_id, env.page_size, env.window, self.state.checkpoint)
        ids = list(self.members)
        return env.source.shared_rows(spec.kind, ids, env.page_size, env.window, self._after_key())

    async def _pump(self) -> None:
        pinned = PinnedDataset(self) if self.spec.pins and not self.shared else None
        if pinned and not await pinned.replay():
            return
        queue: asyncio.Queue[tuple[Page, int] | None] = asyncio.Queue(maxsize=2)
        producer = asyncio.create_task(self._produce(self._reader(), queue))
        writes: set[asyncio.Task[None]] = set()
        seq = 0
        try:
            while (item := await queue.get()) is not None:
                page, held = item
                batches = await self._prepare(page)
                seen, last_key = page.seen, page.last_key
                del page, item  # the parsed source rows: the packed bodies below hold what is sent
                if not batches:  # every row filtered out (fetch duplicates): only the resume point moves
                    await self.env.budget.release(held)
                    self._page_seen[seq] = seen
                    self._done[seq] = (last_key, set())
                    seq += 1
                    self._advance()
                    continue
                # Where a later run resumes once a batch is acknowledged: the keyset key of its last
                # row; for /fetch, the page's cursor, valid only after the page's last batch.
                if self.reader == "btql":
                    resumes = [batch[-1].key for batch in batches]
                else:
                    resumes = [*[None] * (len(batches) - 1), last_key]
                    self._page_seen[seq + len(batches) - 1] = seen  # remembered once acknowledged
                page_left = [len(batches)]
                # Encoded while they wait for a write slot and the request cap: a batch held as its
                # body takes ~1/4 of the memory of its parsed rows (the charge stays the parsed one).
                packed = [self.inserter.pack(batch) for batch in batches]
                del batches
                for batch, resume in zip(packed, resumes, strict=True):
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
                if self.shared:  # shared only after a BTQL count: the data plane has it
                    raise
                self.reader = "fetch"
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
        """Room for a page is taken before it is read (the size of this stream's last page), then
        made what it needs: a page read first and held while waiting for room sat outside the
        budget, one per stream, whenever the writes were slower than the reads."""
        budget = self.env.budget
        expect = 0  # JSON bytes of the last page: the next one is about that size
        pages = aiter(pages)
        while True:
            held = await budget.hold(expect) if expect else 0
            try:
                page = await anext(pages)
            except StopAsyncIteration:
                await budget.release(held)
                return
            except BaseException:
                await budget.release(held)
                raise
            try:
                held = await budget.adjust(held, page.nbytes)
                await queue.put((page, held))
            except asyncio.CancelledError:
                await budget.release(held)
                raise
            expect = page.nbytes

    async def _prepare(self, page: Page) -> list[list[Encoded]]:
        if self.env.ready is not None:
            await self.env.ready(self.spec.kind, page.rows)
        if self.shared:
            return await self._prepare_shared(page)
        self._count_read(self.first, len(page.rows), page.nbytes)
        kind, resolve, notes = self.spec.kind, self.env.resolve, self.first.notes
        attachments = self.env.attachments if self.env.copy_attachments else None
        if attachments is None:  # the common case, one tight loop per page
            size = self._mean_size(page)
            items = [
                encode(to_insert(source, kind, resolve, notes), source, None, size) for source in page.rows
            ]
            return self.inserter.batches(items)
        items = []
        for source in page.rows:
            items.append(await self._encode_with_attachments(source, self.first, attachments))
        return self.inserter.batches(items)

    async def _prepare_shared(self, page: Page) -> list[list[Encoded]]:
        """Each row to its member; rows a member's own checkpoint has passed are not sent again."""
        kind, resolve = self.spec.kind, self.env.resolve
        owner = STREAMS[kind].owner_field
        attachments = self.env.attachments if self.env.copy_attachments else None
        items: list[Encoded] = []
        counted: dict[str, int] = {}
        size = self._mean_size(page)
        for source in page.rows:
            member = self.members.get(str(source.get(owner)))
            if member is None:
                continue
            checkpoint, key = member.state.checkpoint, source.get("_pagination_key")
            if checkpoint is not None and isinstance(key, str) and key <= checkpoint:
                continue
            src_id = member.spec.src_id
            counted[src_id] = counted.get(src_id, 0) + 1
            if attachments is None:
                items.append(encode(to_insert(source, kind, resolve, member.notes), source, src_id, size))
            else:
                items.append(await self._encode_with_attachments(source, member, attachments))
        for src_id, rows in counted.items():  # the page's bytes shared out by rows
            self._count_read(self.members[src_id], rows, page.nbytes * rows // max(1, len(page.rows)))
        return self.inserter.batches(items)

    async def _encode_with_attachments(
        self, source: dict[str, Any], member: Member, attachments: Attachments
    ) -> Encoded:
        row = to_insert(source, self.spec.kind, self.env.resolve, member.notes)
        problems: list[str] = []
        await rewrite_attachments(row, attachments, problems)
        member.outcome.notes += problems[:5]
        return encode(row, source, member.spec.src_id if self.shared else None)

    def _mean_size(self, page: Page) -> int | None:
        """A row's size as the page's mean when the whole page, encoded again, fits in one request:
        then no batch cut from it can pass the byte cap, and no row needs encoding to be measured
        (~3.5 us of CPU per row). An insert row is the source row less server fields, so it is
        smaller, up to re-encoded numbers and translated ids: hence the slack. A destination that
        still answers 413 gets the batch split (writer.py). None: measure every row."""
        rows = len(page.rows)
        fits = page.nbytes * 5 // 4 + SIZE_SLACK + ROUTE_SLACK * len(self.members) <= self.inserter.max_bytes
        return page.nbytes // rows + 1 if rows and fits else None

    @staticmethod
    def _count_read(member: Member, rows: int, nbytes: int) -> None:
        member.outcome.rows_read += rows
        member.outcome.bytes += nbytes
        member.state.rows_read += rows
        member.state.bytes += nbytes

    def _member_of(self, item: Encoded) -> Member:
        return self.members[item.container] if item.container is not None else self.first

    async def _write(
        self, seq: int, packed: Packed, resume: str | None, held: int, page_left: list[int]
    ) -> None:
        batch = packed.items
        failed: set[str] = set(self._split(batch))  # every member in it, until it went through
        try:
            result = await self.inserter.send(packed)
            del packed  # its body, once sent
            failed = await self._after_write(batch, result)
        except ApiError as error:
            self._fail(batch, error.message)
        finally:
            self._slots.release()
            self._done[seq] = (resume, failed)
            self._advance()
            page_left[0] -= 1
            if page_left[0] == 0:
                await self.env.budget.release(held)

    def _split(self, batch: list[Encoded]) -> dict[str, list[Encoded]]:
        """A batch's items per member."""
        if not self.shared:
            return {self.spec.src_id: batch}
        out: dict[str, list[Encoded]] = {}
        for item in batch:
            out.setdefault(str(item.container), []).append(item)
        return out

    async def _after_write(self, batch: list[Encoded], result: BatchResult) -> set[str]:
        """Account for a sent batch per member; the members whose checkpoint it must hold."""
        failed: set[str] = set()
        failed_ids = {row_id for row_id, _, _ in result.failed}
        if failed_ids:
            by_id = {item.row_id: item for item in batch}
            for row_id, size, reason in result.failed:
                member = self._member_of(by_id[row_id]) if row_id in by_id else self.first
                self._record_failure(member, row_id, size, reason)
                failed.add(member.spec.src_id)
        offloaded = set(result.offloaded)
        for src_id, items in self._split(batch).items():
            member = self.members[src_id]
            written = [item for item in items if item.row_id not in failed_ids] if failed_ids else items
            written_ids = [item.row_id for item in written]
            if offloaded:
                member.outcome.offloaded += sum(1 for item in written if item.row_id in offloaded)
            member.outcome.rows_written += len(written_ids)
            member.state.rows_written += len(written_ids)
            # Only rows with a failure on record (this run's or an earlier one's) have one to clear.
            if member.failures and (cleared := [r for r in written_ids if r in member.failures]):
                self.env.events.clear_failure(member.state.stream, cleared)
                member.failures.difference_update(cleared)
            # Acknowledged: ours. --sync-deletes deletes only rows recorded here (~100 B/id, 1 commit/batch).
            self.env.events.mark_copied(member.state.stream, written_ids)
            self.env.on_rows(member.spec, len(written_ids), sum([i.size for i in items]))
            if not await self._copy_comments(member, written):
                failed.add(src_id)
        return failed

    def _record_failure(self, member: Member, row_id: str, size: int, reason: str) -> None:
        member.failures.add(row_id)
        member.outcome.rows_failed += 1
        member.outcome.failed_rows.append({"row_id": row_id, "size": size, "reason": reason})
        self.env.events.record_failure(member.state.stream, row_id, size, reason)

    def _fail(self, batch: list[Encoded], reason: str) -> None:
        for item in batch:
            self._record_failure(self._member_of(item), item.row_id, item.exact_size(), reason)

    def _advance(self) -> None:
        """Move each member's checkpoint over the longest run of acknowledged batches; a batch
        with failed rows of a member stops that member's. Saved at every move (one small SQLite
        write), so a kill at any moment loses no acknowledged batch and a resume never reads
        one again."""
        moved = False
        members = list(self.members.values())
        while self._next_commit in self._done:
            if all(m.blocked for m in members):
                break
            key, failed = self._done.pop(self._next_commit)
            for member in members:
                if member.spec.src_id in failed:
                    member.blocked = True
            seen = self._page_seen.pop(self._next_commit, None)
            if seen and not failed:
                self.env.events.mark_seen(self.state.stream, seen)
            if key:
                for member in members:
                    if member.blocked:
                        continue
                    if self.reader == "fetch":
                        member.state.cursor = key
                    elif member.state.checkpoint is None or key > member.state.checkpoint:
                        member.state.checkpoint = key
                    moved = True
            self._next_commit += 1
        if moved:
            self._save()

    def _save(self) -> None:
        self.env.events.save_all([m.state for m in self.members.values()])

    async def _copy_comments(self, member: Member, items: list[Encoded]) -> bool:
        """Comments of written rows, exactly once (see comments.py); False holds the checkpoint."""
        spec = member.spec
        copier = CommentCopier(
            self.env.dest,
            spec.kind,
            spec.dest_id,
            self.env.events,
            member.state.stream,
            member.comments_local,
        )
        result = await copier.copy(items)
        if not result.ok:
            member.comments_local = False
        member.outcome.comments += result.copied
        member.outcome.notes += [n for n in result.notes if n not in member.outcome.notes]
        return result.ok

    @staticmethod
    def _notes(member: Member) -> None:
        notes, outcome = member.notes, member.outcome
        if notes.origins_dropped:
            outcome.notes.append(
                f"{notes.origins_dropped} rows lost their origin (its container was not migrated)"
            )
        if notes.audit_rows:
            outcome.notes.append(f"{notes.audit_rows} rows have audit_data, which the API cannot write")
        if notes.classified_rows:
            outcome.notes.append(
                f"{notes.classified_rows} rows have classifications, which the API cannot write"
            )
