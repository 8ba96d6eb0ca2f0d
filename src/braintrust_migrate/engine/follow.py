"""`migrate --follow`: after the full copy, the same engine runs again over the same state every
`migration_follow_interval` seconds, until a signal or `--until-idle`.

A pass re-lists both orgs (new or changed objects migrate; the checksum keeps the rest cheap; new
containers get streams) and re-reads streams from their checkpoints. The BTQL keyset on
`_pagination_key` gives a new version of a row a new, larger key, so reading "after the checkpoint"
sees new and updated rows alike. Before a pass one count per stream measures the lag, and a stream
with nothing after its checkpoint is not read in that pass (one request per stream per pass).

Seconds behind: per stream, a FIFO of (first seen, rows) observations; rows copied consume it from
the front, so the oldest change still not copied dates the lag (error: one interval).
The /fetch fallback pages newest to oldest behind a cursor and never sees rows added after it:
follow then stops with one line (FollowNeedsBtql, exit 2)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

from braintrust_migrate.client import ApiClient, ApiError
from braintrust_migrate.config import ConfigError
from braintrust_migrate.engine.context import RunContext
from braintrust_migrate.engine.events.stage import EventStage
from braintrust_migrate.engine.events.state import EventState
from braintrust_migrate.engine.events.stream import StreamOutcome, StreamSpec
from braintrust_migrate.engine.progress import ProgressView
from braintrust_migrate.engine.resources import EventStream, ResourceType
from braintrust_migrate.engine.state import StateStore
from braintrust_migrate.engine.tally import COUNTS
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.source import Source
from braintrust_migrate.source.reader import Window

if TYPE_CHECKING:
    from braintrust_migrate.engine.runner import Runner

log = get_logger(__name__)

PASSES_KEPT = 500  # the report's per-pass rows: the newest ones
COUNT_CONCURRENCY = 8

# Called once per idle period (0 rows behind, no object change) with reason "idle", and once at the
# end with "end": where `--sync-deletes` runs its delete diff in follow mode (a later helper).
CaughtUpHook = Callable[[RunContext, str], Awaitable[None]]


class FollowNeedsBtql(ConfigError):
    """A stream fell back to /fetch, which cannot see rows written after its cursor."""


def _key(spec: StreamSpec) -> str:
    return f"{spec.kind}:{spec.src_id}"


@dataclasses.dataclass
class Lag:
    """Rows and seconds behind, from one count per stream."""

    pending: dict[Hashable, deque[list[float]]] = dataclasses.field(default_factory=dict)
    rows: int = 0
    seconds: float = 0.0
    last_look: float | None = None

    def observe(self, counts: Mapping[Any, int], now: float) -> None:
        # Rows first counted now arrived after the last look: dated then, the lag is an upper
        # bound (one interval at most too high), not a 0 while the follower keeps pace.
        since = self.last_look if self.last_look is not None else now
        self.last_look = now
        for key, n in counts.items():
            queue = self.pending.setdefault(key, deque())
            known = sum(int(item[1]) for item in queue)
            if n > known:
                queue.append([since, n - known])
            elif n < known:  # fewer than seen (versions collapsed): drop the oldest
                self.consume(key, known - n)
        self.rows = sum(counts.values())
        firsts = [queue[0][0] for queue in self.pending.values() if queue]
        self.seconds = round(now - min(firsts), 2) if firsts else 0.0

    def consume(self, key: Hashable, rows: int) -> None:
        queue = self.pending.get(key)
        while queue and rows > 0:
            take = min(rows, int(queue[0][1]))
            queue[0][1] -= take
            rows -= take
            if queue[0][1] <= 0:
                queue.popleft()


@dataclasses.dataclass
class FollowStats:
    passes: int = 0
    rows_copied: int = 0
    rows_per_pass: list[int] = dataclasses.field(default_factory=list)
    objects_changed: int = 0
    rows_behind: int | None = None
    seconds_behind: float | None = None
    idle_s: float = 0.0
    stopped_by: str | None = None  # signal | idle | no_btql | None while following

    def to_dict(self) -> dict[str, Any]:
        return {
            "passes": self.passes,
            "rows_copied": self.rows_copied,
            "rows_per_pass": self.rows_per_pass[-PASSES_KEPT:],
            "objects_changed": self.objects_changed,
            "last_lag": {"rows_behind": self.rows_behind, "seconds_behind": self.seconds_behind},
            "idle_s": round(self.idle_s, 2),
            "stopped_by": self.stopped_by,
        }


def follow_line(follow: dict[str, Any]) -> str:
    """The text report's follow line."""
    lag = follow.get("last_lag") or {}
    return (
        f"follow: {follow['passes']} passes, {follow['rows_copied']} rows copied while following,"
        f" last lag {lag.get('rows_behind')} rows / {lag.get('seconds_behind')} s,"
        f" idle {follow['idle_s']} s, stopped by {follow['stopped_by'] or '(still following)'}"
    )


class Follower:
    def __init__(
        self,
        runner: Runner,
        clients: tuple[Source, ApiClient],
        orgs: tuple[dict[str, Any], dict[str, Any]],
        state: StateStore,
        run_id: str,
        selection: tuple[list[ResourceType], list[EventStream]],
        write_report: Callable[[RunContext], None],
    ) -> None:
        self.runner, self.clients, self.orgs = runner, clients, orgs
        self.state, self.run_id = state, run_id
        self.types, self.event_streams = selection
        self.write_report = write_report
        self.stats = FollowStats()
        self.lag = Lag()
        self.caught_up_hooks: list[CaughtUpHook] = []
        # Rows behind per (stream kind, container), counted before each pass.
        self._counts: dict[tuple[str, str], int] = {}
        s = runner.settings
        self.interval = s.migration_follow_interval
        self.window = Window(s.migration_created_after, s.migration_created_before)

    def to_dict(self) -> dict[str, Any]:
        return self.stats.to_dict()

    def check(self) -> None:
        """After the final report: follow could not run on this source (exit 2)."""
        if self.stats.stopped_by == "no_btql":
            raise FollowNeedsBtql(
                f"--follow needs BTQL on the source data plane ({self.runner.settings.bt_source_url}):"
                " it has no /btql, and /fetch cannot see rows written after the copy"
            )

    async def run(self, ctx: RunContext) -> RunContext:
        """Passes until a signal or --until-idle; returns the context of the last complete pass."""
        runner = self.runner
        runner.options.fresh = False  # --fresh applied to the first copy; a pass continues it
        runner._checkpoint = None  # the report is rewritten after each pass instead
        self.ctx = ctx
        self._collapse_streams()
        if self._fell_back():
            return ctx
        until_idle = runner.options.until_idle
        idle_since: float | None = None
        view = runner.progress
        try:
            while True:
                started = time.monotonic()
                if not await self._measure():
                    break
                changed = await self._pass(view)
                if self._fell_back():
                    break
                now = time.monotonic()
                if self.lag.rows == 0 and not changed:
                    if idle_since is None:
                        idle_since = now
                        await self._caught_up("idle")
                    self.stats.idle_s = now - idle_since
                else:
                    idle_since, self.stats.idle_s = None, 0.0
                view.follow_lag(self.stats.passes, self.lag.rows, self.lag.seconds, self.stats.rows_copied)
                self.write_report(self.ctx)
                if until_idle is not None and idle_since is not None and self.stats.idle_s >= until_idle:
                    self.stats.stopped_by = "idle"
                    break
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        except asyncio.CancelledError:
            if not runner.interrupted:
                raise
            self.stats.stopped_by = "signal"  # a planned stop: checkpoints are saved
            log.info("follow stopped by a signal; finishing the report")
        finally:
            runner.progress = view
        if self.stats.stopped_by == "signal":
            with contextlib.suppress(ApiError):  # the lag the stop leaves, for the final report
                await self._measure()
        if self.stats.stopped_by != "no_btql":
            await self._caught_up("end")
        return self.ctx

    async def _caught_up(self, reason: str) -> None:
        for hook in self.caught_up_hooks:
            await hook(self.ctx, reason)

    def _fell_back(self) -> bool:
        if any(o.reader == "fetch" for o in self.runner.streams):
            self.stats.stopped_by = "no_btql"
            return True
        return False

    def _specs(self, ctx: RunContext) -> list[StreamSpec]:
        stage = EventStage(ctx, self.runner.settings, lambda *_: None, None)
        return [spec for stream in self.event_streams for spec in stage.specs(stream)]

    async def _measure(self) -> bool:
        """Rows behind per stream (source rows after its checkpoint); False: the source has no BTQL."""
        events = EventState(self.state)
        specs = self._specs(self.ctx)
        source = self.clients[0]
        slots = asyncio.Semaphore(COUNT_CONCURRENCY)

        async def count(spec: StreamSpec) -> tuple[StreamSpec, int | None]:
            row = events.db.execute(
                "SELECT checkpoint FROM streams WHERE stream = ?", (_key(spec),)
            ).fetchone()
            async with slots:
                try:
                    n = await source.count(spec.kind, spec.src_id, self.window, row[0] if row else None)
                except ApiError:
                    n = 1  # unknown: read it this pass
            return spec, n

        counted = await asyncio.gather(*(count(spec) for spec in specs))
        if any(n is None for _, n in counted):
            self.stats.stopped_by = "no_btql"
            return False
        self._counts = {(spec.kind, spec.src_id): int(n or 0) for spec, n in counted}
        self.lag.observe(self._counts, time.monotonic())
        self.stats.rows_behind, self.stats.seconds_behind = self.lag.rows, self.lag.seconds
        return True

    async def _pass(self, view: ProgressView) -> bool:
        """One pass of the engine over the same state; True when an object was created or updated."""
        runner = self.runner
        runner.progress = ProgressView(enabled=False)  # object bars stay at the first copy's counts
        before = len(runner.streams)
        ctx, _, refused = await runner._prepare(self.clients, self.orgs, self.state, self.run_id, self.types)
        for outcome in refused:
            runner._record(ctx, outcome)
        # A stream counted with nothing after its checkpoint is not read; a new container is.
        runner.stream_filter = lambda spec: self._counts.get((spec.kind, spec.src_id), 1) > 0
        runner.stream_counts = self._counts  # the shared reads are planned on these counts
        try:
            await runner._steps(ctx, self.types, self.event_streams)
        finally:
            runner.stream_filter, runner.stream_counts = None, None
            runner.progress = view
        copied = 0
        for stream in runner.streams[before:]:
            copied += stream.rows_written
            self.lag.consume((stream.spec.kind, stream.spec.src_id), stream.rows_written)
        changed = sum(1 for o in ctx.outcomes if o.action in ("created", "updated"))
        # What earlier passes wrote stays "created"/"updated" in the report (runner._merged_outcomes).
        runner._earlier.update({(o.kind, o.source_id): o.to_dict() for o in self.ctx.outcomes})
        self.ctx = ctx
        self._collapse_streams()
        self.stats.passes += 1
        self.stats.rows_copied += copied
        self.stats.rows_per_pass.append(copied)
        self.stats.objects_changed += changed
        if copied or changed:
            log.info("follow pass copied changes", pass_no=self.stats.passes, rows=copied, objects=changed)
        return changed > 0

    def _collapse_streams(self) -> None:
        """One outcome per stream, its counts summed over the passes of this invocation."""
        merged: dict[str, StreamOutcome] = {}
        for outcome in self.runner.streams:
            key = _key(outcome.spec)
            first = merged.get(key)
            if first is None:
                merged[key] = dataclasses.replace(outcome, failed_rows=list(outcome.failed_rows))
                continue
            for name in COUNTS:
                if name != "rows_failed":
                    setattr(first, name, getattr(first, name) + getattr(outcome, name))
            first.rows_failed = outcome.rows_failed  # the latest pass's failures are the current ones
            first.failed_rows = outcome.failed_rows
            first.status, first.error, first.reader = outcome.status, outcome.error, outcome.reader
            first.comments += outcome.comments
            first.duration_s += outcome.duration_s
            first.notes += [n for n in outcome.notes if n not in first.notes]
        self.runner.streams = list(merged.values())
