"""Exact dataset versions. The destination cannot take source transaction ids, so a
dataset that experiments or snapshots pin is first written pin by pin: for each pinned
version V, in order, the rows as of V (read with BTQL or /fetch `version`) that changed
since the previous pin, then deletions of the ids gone since. Every write for V lands
before any write for the next pin starts (batches in flight land in any order), then
the destination's newest transaction is recorded as V's translation. The current state
then streams as usual from the last pinned row on, and what the source deleted since is
deleted. Pins written are persisted, so a resumed run starts at the first one not
yet written, from the state the destination was left in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from braintrust_migrate.client import ApiClient, ApiError
from braintrust_migrate.engine.events.writer import Encoded, encode
from braintrust_migrate.source.live import LiveSource
from braintrust_migrate.source.reader import Page
from braintrust_migrate.source.snapshots import PINNED_PATH

if TYPE_CHECKING:
    import sqlite3

    from braintrust_migrate.engine.events.stream import Stream

WRITES_IN_FLIGHT = 4  # within one pin: its rows are distinct ids, so their order is free

SCHEMA = """
CREATE TABLE IF NOT EXISTS dataset_pins (
    src_dataset TEXT NOT NULL, dest_dataset TEXT NOT NULL, pin TEXT NOT NULL, dest_xact TEXT,
    PRIMARY KEY (src_dataset, dest_dataset, pin)
);
CREATE TABLE IF NOT EXISTS dataset_pin_position (
    src_dataset TEXT NOT NULL, dest_dataset TEXT NOT NULL, at_pin TEXT, writing_pin TEXT,
    PRIMARY KEY (src_dataset, dest_dataset)
);
"""


class PinLog:
    """Which pins are written (pin -> destination transaction, None when untranslatable);
    while pins are being written, the pin the destination equalled before the one being written."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    def reset(self, src: str) -> None:
        self.db.execute("DELETE FROM dataset_pins WHERE src_dataset = ?", (src,))
        self.db.execute("DELETE FROM dataset_pin_position WHERE src_dataset = ?", (src,))

    def done(self, src: str, dest: str) -> dict[int, str | None]:
        rows = self.db.execute(
            "SELECT pin, dest_xact FROM dataset_pins WHERE src_dataset = ? AND dest_dataset = ?", (src, dest)
        )
        return {int(pin): xact for pin, xact in rows}

    def dest_xact(self, src: str, dest: str, pin: str) -> str | None:
        row = self.db.execute(
            "SELECT dest_xact FROM dataset_pins WHERE src_dataset = ? AND dest_dataset = ? AND pin = ?",
            (src, dest, pin),
        ).fetchone()
        return row[0] if row else None

    def position(self, src: str, dest: str) -> tuple[int | None, int | None]:
        row = self.db.execute(
            "SELECT at_pin, writing_pin FROM dataset_pin_position WHERE src_dataset = ? AND dest_dataset = ?",
            (src, dest),
        ).fetchone()
        return (int(row[0]) if row and row[0] else None), (int(row[1]) if row and row[1] else None)

    def begin(self, src: str, dest: str, at: int | None, pin: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO dataset_pin_position VALUES (?, ?, ?, ?)",
            (src, dest, None if at is None else str(at), str(pin)),
        )

    def complete(self, src: str, dest: str, pin: int, dest_xact: str | None, *, last: bool) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO dataset_pins VALUES (?, ?, ?, ?)", (src, dest, str(pin), dest_xact)
        )
        if last:  # the current state streams next: the destination moves past every pin
            self.db.execute(
                "DELETE FROM dataset_pin_position WHERE src_dataset = ? AND dest_dataset = ?", (src, dest)
            )
        else:
            self.db.execute(
                "INSERT OR REPLACE INTO dataset_pin_position VALUES (?, ?, ?, NULL)", (src, dest, str(pin))
            )


async def _ahead(pages: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[list[dict[str, Any]]]:
    """The next page is read while the caller writes this one."""
    pending = asyncio.ensure_future(anext(pages, None))
    try:
        while (page := await pending) is not None:
            pending = asyncio.ensure_future(anext(pages, None))
            yield page
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


async def newest_xact(dest: ApiClient, dataset: str) -> str | None:
    """The destination dataset's newest transaction: its first fetch row (newest first)."""
    data = await dest.post_json(f"{PINNED_PATH}/{dataset}/fetch", {"limit": 1})
    xacts = [int(r["_xact_id"]) for r in data.get("events") or [] if str(r.get("_xact_id", "")).isdigit()]
    return str(max(xacts)) if xacts else None


class PinnedDataset:
    """The pin phases of one dataset stream, and its closing deletions."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        env, spec = stream.env, stream.spec
        self.src, self.dest = spec.src_id, spec.dest_id
        self.log = PinLog(env.events.db)
        self.source = env.source.snapshots(spec.src_id, env.page_size, env.window)
        self.target = LiveSource(env.dest).snapshots(spec.dest_id, env.page_size, env.window)
        self.versions = 0  # row versions written for pins
        self._slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        self._writes: list[asyncio.Task[None]] = []
        self._failed = False
        self.deleted = 0

    async def replay(self) -> bool:
        """Write every pin not yet written; False when a write failed (the stream stops)."""
        stream = self.stream
        if stream.env.fresh:
            self.log.reset(self.src)
        done = self.log.done(self.src, self.dest)
        todo = [pin for pin in stream.spec.pins if pin not in done]
        if not todo:
            return True
        at, writing = self.log.position(self.src, self.dest)
        if at is not None and at < todo[0] and writing in (None, todo[0]):
            # The destination equals the source at `at`, plus part of todo[0]: only differences
            # need writing. (Part of another pin would leave rows no diff from `at` rewrites.)
            since: int | None = at
            live, _ = await self.source.ids(at)
        elif stream.spec.new_dest and stream.state.new:
            since, live = None, set()  # this run made the container, and nothing wrote it since
        else:
            since, (live, _) = None, await self.target.ids(None)
        for index, pin in enumerate(todo):
            self.log.begin(self.src, self.dest, since, pin)
            ok, ids, last_key = await self._phase(pin, since, live)
            if not ok:
                return False
            xact = await newest_xact(stream.env.dest, self.dest) if ids else None
            last = index == len(todo) - 1
            if last:
                # The current state streams from the last pinned row on: rows rewritten since
                # have larger keys. Saved before the pin is marked, so a crash redoes the pin.
                stream.state.checkpoint, stream.state.cursor = last_key, None
                stream.env.events.save(stream.state)
            self.log.complete(self.src, self.dest, pin, xact, last=last)
            if xact is None:
                stream.outcome.notes.append(
                    f"dataset version {pin} is empty: pins on it cannot be translated"
                )
            since, live = pin, ids
        stream.outcome.notes.append(
            f"{len(todo)} pinned dataset versions written in order:"
            f" {self.versions} row versions, {self.deleted} deletions"
        )
        return True

    async def finish(self) -> None:
        """Make the destination's live rows the source's: delete what the source has deleted
        since a pin (the stream reads live rows only), and write again what the destination
        lacks. The destination is read, not assumed from this state's records: a run from
        another state folder may have rewound it to a pin since (deleting later rows)."""
        (there, _), (here, _) = await asyncio.gather(self.target.ids(None), self.source.ids(None))
        if there - here:
            await self._delete(sorted(there - here))
        missing = here - there
        if not missing:
            return
        async for rows in self.source.rows(None, None):
            lacking = [row for row in rows if str(row["id"]) in missing]
            if lacking and not await self._start(lacking):
                break
        if await self._drain():
            self.stream.outcome.notes.append(f"{len(missing)} rows the destination lacked written again")

    async def _phase(self, pin: int, since: int | None, live: set[str]) -> tuple[bool, set[str], str | None]:
        """Make the destination, holding `live` (the source as of `since`, or anything when
        None), equal the source as of `pin`. Ends on a live row's write: its transaction is
        readable, a deletion's is not. Returns (ok, ids as of pin, their last key)."""
        # Every row as of pin is written when `since` is None: its ids come with it; else they
        # are read beside the writes.
        ids: set[str] = set()
        last_key: str | None = None
        scan = asyncio.create_task(self.source.ids(pin)) if since is not None else None
        last_row = None
        try:
            async for rows in _ahead(self.source.rows(pin, since)):
                if not await self._start(rows):
                    break
                last_row = rows[-1]
                if since is None:
                    ids.update(str(row["id"]) for row in rows)
                    last_key = rows[-1].get("_pagination_key") or last_key
        except BaseException:  # a failed read: no write of this pin outlives the stream
            await asyncio.gather(*self._writes, return_exceptions=True)
            if scan is not None:
                scan.cancel()
            raise
        # The barrier: every write of this pin lands before its deletions, and before the pin is read.
        drained = await self._drain()
        if scan is not None:
            ids, last_key = await scan
        if not drained:
            return False, ids, last_key
        gone = sorted(live - ids)
        if gone and not await self._delete(gone):
            return False, ids, last_key
        if ids and (gone or last_row is None):
            last_row = last_row or await self.source.any_row(pin)
            if last_row is not None and not (await self._start([last_row]) and await self._drain()):
                return False, ids, last_key  # (that row once more, unchanged)
        return True, ids, last_key if self.source.btql else None

    async def _start(self, rows: list[dict[str, Any]]) -> bool:
        """Send a page's batches, a few at once; False once any write has failed."""
        stream = self.stream
        nbytes = len(orjson.dumps(rows))
        held = await stream.env.budget.hold(nbytes)
        batches = await stream._prepare(Page(rows, nbytes, None))
        left = [len(batches)]
        if not batches:
            await stream.env.budget.release(held)
        for batch in batches:
            await self._slots.acquire()
            self._writes.append(asyncio.create_task(self._send(batch, held, left)))
        return not self._failed

    async def _send(self, batch: list[Encoded], held: int, left: list[int]) -> None:
        stream = self.stream
        try:
            result = await stream.inserter.send(batch)
            held_back = await stream._after_write(batch, result)
            self.versions += len(result.written)
            if result.failed or held_back:  # the pin is written again next run
                self._failed = True
        except ApiError as error:
            stream._fail(batch, error.message)
            self._failed = True
        finally:
            self._slots.release()
            left[0] -= 1
            if left[0] == 0:
                await stream.env.budget.release(held)

    async def _drain(self) -> bool:
        writes, self._writes = self._writes, []
        await asyncio.gather(*writes)
        if self._failed:
            self.stream._blocked = True
        return not self._failed

    async def _delete(self, ids: list[str]) -> bool:
        stream = self.stream
        items = [encode({"id": row_id, "_object_delete": True}, {}) for row_id in ids]
        for batch in stream.inserter.batches(items):
            result = await stream.inserter.send(batch)
            self.deleted += len(result.written)
            if result.failed:
                stream.outcome.notes.append(
                    f"{len(result.failed)} deletions for pinned versions failed: {result.failed[0][2]}"
                )
                stream._blocked = True
                return False
        return True
