"""One migration run: discover both orgs, take the state's lock, list both sides, build the
object graph, walk the steps (engine/walk.py), report; signals stop it with the state saved."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from braintrust_migrate.client import ApiClient, client_for
from braintrust_migrate.config import ConfigError, Settings
from braintrust_migrate.engine import same_org, shards
from braintrust_migrate.engine.context import Options, RunContext
from braintrust_migrate.engine.deletes import Deletions, sync_deletes
from braintrust_migrate.engine.events.stage import (
    plan_report,
    stream_report,
)
from braintrust_migrate.engine.events.stream import StreamOutcome
from braintrust_migrate.engine.follow import Follower
from braintrust_migrate.engine.graph import link
from braintrust_migrate.engine.inventory import ALL_LISTABLE, load_inventory, load_owned
from braintrust_migrate.engine.names import ProjectNames, project_names
from braintrust_migrate.engine.progress import ProgressView
from braintrust_migrate.engine.renames import check_run_renames
from braintrust_migrate.engine.report import Outcome, ReportFiles, build_report, write_report
from braintrust_migrate.engine.resources import (
    PROJECT_TYPE,
    RESOURCE_TYPES,
    ResourceType,
)
from braintrust_migrate.engine.scope import owner_objects
from braintrust_migrate.engine.secrets_file import Secrets, unknown_names_warning
from braintrust_migrate.engine.selection import (
    build_nodes,
    outside_window,
    run_streams,
    run_types,
    selected_names,
    selected_projects,
)
from braintrust_migrate.engine.shards import OBJECTS_FINISHED, Shard
from braintrust_migrate.engine.state import STATE_FILE, StateStore
from braintrust_migrate.engine.statedir import (
    StateLock,
    check_state_file,
    make_private_dirs,
    resolve_state_dir,
    sibling_dest_ids,
)
from braintrust_migrate.engine.tally import StreamTally
from braintrust_migrate.engine.users import build_user_map
from braintrust_migrate.engine.walk import StepWalker, refused, refused_node
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.orgs import choose_org
from braintrust_migrate.source import Source
from braintrust_migrate.source.live import LiveSource, open_live

log = get_logger(__name__)
T = TypeVar("T")

MAX_SETTLE_ROUNDS = 5


class RunResult(ReportFiles):
    @property
    def ok(self) -> bool:
        return self.report["failed"] == 0


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM: the run stopped cleanly; `result` is its report so far (None before any)."""

    def __init__(self, result: RunResult | None) -> None:
        super().__init__("interrupted")
        self.result = result


async def discover_org(source: Source, org_name: str | None) -> dict[str, Any]:
    """The org this side's key acts in; an OrgChoiceError (exit 2) when that is ambiguous."""
    return choose_org(await source.organizations(), org_name, source.side)


class Runner(StepWalker):
    def __init__(
        self,
        settings: Settings,
        options: Options,
        secrets: Secrets,
        progress: ProgressView | None = None,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        source: Source | None = None,
    ):
        # Where the run reads from: an export folder (import), else the source org's API; a
        # folder's selection is the run's unless the run gives its own.
        self.settings = source.settings_for(settings) if source is not None else settings
        self.source = source
        self.on_event = on_event  # a library host's hook (api.py): each object outcome and row batch
        self.options = options
        self.secrets = secrets
        self.progress = progress or ProgressView(enabled=False)
        self._checkpoint: Any = None
        self.streams: list[StreamOutcome] = []
        self._earlier: dict[tuple[str, str], dict[str, Any]] = {}
        self.tally = StreamTally(None, "")
        self.row_plan: list[dict[str, Any]] = []  # a dry run's rows to copy, per container
        self.interrupted = False
        self.deletions: Deletions | None = None  # --sync-deletes: the delete pass after the copy
        self.follower: Follower | None = None  # migrate --follow (engine/follow.py)
        self.names = ProjectNames()  # read from the settings when the run starts
        self.shard = shards.mode_of(self.settings.migration_shard)
        if isinstance(self.shard, Shard):  # a shard copies only the rows of its containers
            self.stream_filter = self.shard.keeps

    def selection(self) -> set[str]:
        return selected_names(self.settings)

    async def run(self) -> RunResult:
        """The run; on SIGINT/SIGTERM its tasks are cancelled (streams save their checkpoints) and
        RunInterrupted carries the report so far."""
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None

        def on_signal() -> None:
            if self.interrupted:  # a second signal: stop now (every state change is already committed)
                os._exit(130)
            self.interrupted = True
            task.cancel()

        installed: dict[signal.Signals, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous = signal.getsignal(sig)
                loop.add_signal_handler(sig, on_signal)
                installed[sig] = previous
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass
        try:
            async with contextlib.AsyncExitStack() as stack:
                source = self.source
                if source is None:
                    source = await stack.enter_async_context(open_live(self.settings, "source"))
                dest = await stack.enter_async_context(client_for(self.settings, "dest"))
                return await self._run(source, dest)
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
            raise RunInterrupted(None) from None
        finally:
            for sig, previous in installed.items():
                loop.remove_signal_handler(sig)
                # asyncio leaves SIGINT to KeyboardInterrupt: give it back to the entry point's handler.
                if previous is not None:
                    signal.signal(sig, previous)

    async def _run(self, source: Source, dest: ApiClient) -> RunResult:
        s = self.settings
        self.names = project_names(s)  # a bad map file stops the run before anything is read
        source_org, dest_org = await asyncio.gather(
            discover_org(source, s.bt_source_org_name), discover_org(LiveSource(dest), s.bt_dest_org_name)
        )
        if self.source is None:  # an export folder may be restored into the org it came from
            same_org.early_check(source_org, dest_org, self.names, s.migration_projects)
        # The state is checked and locked before anything is written to either org.
        location = resolve_state_dir(s.migration_state_dir, source_org, dest_org)
        folder = pair = location.folder
        make_private_dirs(folder)
        shards.check_options(self.shard, self.options)
        pair_lock = None
        if isinstance(self.shard, Shard):  # its own state folder; the pair's only read
            pair_lock, folder = shards.open_shard(pair, self.shard)
        lock = StateLock(folder)
        try:
            lock.acquire()
            aside = check_state_file(folder / STATE_FILE, fresh=self.options.fresh)
            if aside:
                log.warning("unusable state moved aside; starting a new state", moved_to=str(aside))
            state = StateStore(folder / STATE_FILE)
            try:
                if isinstance(self.shard, Shard):
                    shards.copy_id_map(pair, state)
                elif self.shard is None and not self.options.dry_run:
                    shards.fold(pair, state)  # after a sharded copy: the shards' checkpoints
                for key, value in (("source_org_id", source_org["id"]), ("dest_org_id", dest_org["id"])):
                    if state.get_meta(key) is None:
                        state.set_meta(key, value)
                return await self._run_with_state(
                    source, dest, source_org, dest_org, state, folder, location.run_id
                )
            finally:
                state.close()
        finally:
            lock.release()
            if pair_lock is not None:
                pair_lock.release()

    def _run_id(self, state: StateStore, named: str | None = None) -> str:
        """Resume the interrupted run (the one --state-dir named, else the last); or start one."""
        if not self.options.fresh and not self.options.dry_run:
            if named and state.run_status(named) == "running":
                log.info("resuming the interrupted run", run_id=named)
                return named
            last = state.last_run()
            if named and named != (last or ("",))[0]:
                log.info("the run named by --state-dir is finished; starting a new run", run_id=named)
            if last and last[1] == "running":
                log.info("resuming the interrupted run", run_id=last[0])
                return last[0]
        base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + ("-dry-run" if self.options.dry_run else "")
        # Two runs within one second must not share an id (and so counts and reports).
        run_id, n = base, 1
        while state.run_status(run_id) is not None or (state.path.parent / "runs" / run_id).exists():
            n += 1
            run_id = f"{base}-{n}"
        return run_id

    async def _run_with_state(
        self,
        source: Source,
        dest: ApiClient,
        source_org: dict[str, Any],
        dest_org: dict[str, Any],
        state: StateStore,
        folder: Path,
        named_run: str | None = None,
    ) -> RunResult:
        s, selected = self.settings, self.selection()
        run_id = self._run_id(state, named_run)
        started = time.time()
        invocations = 1
        if not self.options.dry_run:
            state.start_run(run_id, {"resources": sorted(selected), "projects": s.migration_projects})
            invocations = state.start_invocation(run_id)
        self.tally = StreamTally(None if self.options.dry_run else state, run_id)
        types, streams = run_types(selected), run_streams(selected)
        try:
            ctx, projects, refused_outcomes = await self._prepare(
                (source, dest), (source_org, dest_org), state, run_id, types
            )
        except ConfigError:  # refused before any write (a name collision): nothing to resume
            if invocations == 1 and not self.options.dry_run:
                state.finish_run(run_id, "refused")
                state.finish_invocation(run_id, "refused")
            raise
        base = {
            "run_id": run_id,
            "dry_run": self.options.dry_run,
            "source_org": source_org.get("name"),
            "dest_org": dest_org.get("name"),
            "source_org_id": source_org["id"],
            "dest_org_id": dest_org["id"],
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "resumed": invocations > 1,
            "shard": s.migration_shard,
            "invocations": invocations,
            "selection": {
                "resources": sorted(selected),
                "projects": sorted(p["name"] for p in projects.values()),
            },
        }
        run_folder = folder / "runs" / run_id

        def report(final: bool, interrupted: bool = False) -> tuple[dict[str, Any], Path, Path]:
            meta = {
                **base,
                "complete": final,
                "interrupted": interrupted,
                "duration_s": round(time.time() - started, 2),
                "http": {"source": source.stats.to_dict(), "dest": dest.stats.to_dict()},
                "throughput": self.tally.throughput.to_dict(),  # this invocation's rows over time
            }
            data = build_report(
                meta,
                self._merged_outcomes(ctx),
                ctx.users.unmapped_emails() if ctx.users.enabled else [],
                stream_report(self.tally.merged(self.streams, interrupted=interrupted)),
                users_mapped=ctx.users.enabled,
            )
            if self.options.dry_run:
                data["events"]["plan"] = plan_report(self.row_plan)
            if self.deletions is not None:
                data["deletes"] = self.deletions.to_dict()
            if self.follower is not None:
                data["follow"] = self.follower.to_dict()
            return (data, *write_report(run_folder, data))

        # What the interrupted invocation of this run recorded, read before this one overwrites it.
        self._earlier = (
            {} if self.options.dry_run else {(o["kind"], o["source_id"]): o for o in state.outcomes(run_id)}
        )
        self._checkpoint = lambda _ctx: report(final=False)
        writes_objects = not isinstance(self.shard, Shard)  # a shard's progress is rows only
        self.progress.start(Counter(node.rt.name for node in ctx.nodes.values() if writes_objects))
        for outcome in refused_outcomes:
            self._record(ctx, outcome)

        def rewrite(pass_ctx: RunContext) -> None:  # follow: the report after each pass
            nonlocal ctx
            ctx = pass_ctx
            report(final=False)

        try:
            await self._steps(ctx, types, streams)
            # Only what the source no longer has; while following, once each time it is caught up.
            chosen = projects if s.migration_projects else None  # else every project, new ones too

            async def delete_pass(pass_ctx: RunContext, _why: str = "") -> None:
                found = await sync_deletes(pass_ctx, s, types, streams, chosen)
                self.deletions = found if self.deletions is None else self.deletions.add(found)
                for outcome in found.objects:
                    self._record(pass_ctx, outcome)

            if self.options.sync_deletes:
                await delete_pass(ctx)
            if self.options.follow and not self.options.dry_run:
                self.follower = Follower(
                    self, (source, dest), (source_org, dest_org), state, run_id, (types, streams), rewrite
                )
                if self.options.sync_deletes:
                    self.follower.caught_up_hooks.append(delete_pass)
                ctx = await self.follower.run(ctx)
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
            self.progress.stop()
            data, json_path, text_path = report(final=False, interrupted=True)
            if not self.options.dry_run:
                state.finish_invocation(run_id, "interrupted")  # the run stays 'running': a re-run resumes it
            raise RunInterrupted(RunResult(data, json_path, text_path)) from None
        finally:
            self.progress.stop()
        data, json_path, text_path = report(final=True)
        if not self.options.dry_run:
            status = "completed" if data["failed"] == 0 else "failed"
            state.finish_run(run_id, status)
            state.finish_invocation(run_id, status)
            if not isinstance(self.shard, Shard):  # what `--shard I/N` waits for
                state.set_meta(OBJECTS_FINISHED, run_id)
        if self.follower is not None:
            self.follower.check()  # follow could not run on this source: exit 2, after the report
        return RunResult(data, json_path, text_path)

    async def _prepare(
        self,
        clients: tuple[Source, ApiClient],
        orgs: tuple[dict[str, Any], dict[str, Any]],
        state: StateStore,
        run_id: str,
        types: list[ResourceType],
    ) -> tuple[RunContext, dict[str, dict[str, Any]], list[Outcome]]:
        """Both sides listed, users mapped, the object graph built and linked: the run's context,
        its projects, and failed outcomes for what a key may not list."""
        s = self.settings
        (source, dest), (source_org, dest_org) = clients, orgs
        dest_view = LiveSource(dest)
        source_types = [rt for rt in ALL_LISTABLE if rt in types or rt.always_listed]
        listed = time.perf_counter()
        # The destination's later phases are listed when they start (they see this run's writes).
        src_inv, dst_inv = await asyncio.gather(
            load_inventory(source, s.bt_source_org_name, source_types),
            load_inventory(
                dest_view, s.bt_dest_org_name, [rt for rt in ALL_LISTABLE if rt.phase == "objects"]
            ),
        )
        log.info("phase finished", phase="listing both orgs", seconds=round(time.perf_counter() - listed, 3))
        projects = selected_projects(s, src_inv)
        copy_in_org = same_org.is_copy(source_org, dest_org, self.names)
        if copy_in_org:
            projects = same_org.without_copies(projects, same_org.copied_projects(state))
        if self.source is None or copy_in_org:
            mapped = same_org.mapped_projects(state, projects)
            same_org.check_projects(
                source_org, dest_org, self.names, projects, dst_inv.of(PROJECT_TYPE.kind), mapped
            )
        merge = self.options.merge_into_existing
        others = sibling_dest_ids(state.path.parent) or set()  # other sources' migrations into dest
        check_run_renames(
            self.names, src_inv, projects, dst_inv, state, merge_into_existing=merge, others=others
        )
        if copy_in_org:  # recorded once the names are known to work
            same_org.check_fingerprint(state, self.names, record=not self.options.dry_run)
        # Objects listed per owner (views) and the user map need nothing of each other: one wait.
        owned = [
            load_owned(source, src_inv, rt, owner_objects(rt, src_inv, projects))
            for rt in types
            if rt.per_owner
        ]
        users, _ = await asyncio.gather(
            build_user_map(
                source,
                dest,
                dest_view,
                enabled=self.options.map_users,
                invite=self.options.invite_users and not isinstance(self.shard, Shard),
                dry_run=self.options.dry_run,
                source_org=s.bt_source_org_name,
                dest_org=s.bt_dest_org_name,
            ),
            asyncio.gather(*owned),
        )
        ctx = RunContext(
            source=source,
            dest=dest,
            dest_view=dest_view,
            state=state,
            run_id=run_id,
            options=self.options,
            source_org=source_org,
            dest_org=dest_org,
            source_org_name=s.bt_source_org_name,
            dest_org_name=s.bt_dest_org_name,
            secrets=self.secrets,
            users=users,
            src_inv=src_inv,
            dst_inv=dst_inv,
            nodes=build_nodes(s, types, src_inv, projects),
            same_org_copy=copy_in_org,
            outside_window=outside_window(s, types, src_inv, projects),
            names=self.names,
        )
        if copy_in_org:  # org objects are not copied: the copy names the originals
            ctx.nodes = same_org.copy_nodes(ctx.nodes, src_inv)
        self._warn_unknown_secrets(ctx, types)
        refused_outcomes = self._unreadable(ctx, types)
        link(ctx.nodes)
        loop = asyncio.get_running_loop()
        for node in ctx.nodes.values():
            node.done = loop.create_future()
        if isinstance(self.shard, Shard):
            shards.known_from_state(ctx)
        return ctx, projects, refused_outcomes

    def _warn_unknown_secrets(self, ctx: RunContext, types: list[ResourceType]) -> None:
        """A secrets-file name that matches nothing in the source is most likely misspelt."""
        known: dict[str, list[str] | None] = {}
        for rt in RESOURCE_TYPES:
            if rt.secret is not None:
                known.setdefault(rt.secret.section, None)
        for node in ctx.nodes.values():
            secret = node.rt.secret
            if secret is None:
                continue
            names = known[secret.section] = known.get(secret.section) or []
            name = node.src.get("name", "")
            names += [name, f"{node.project}/{name}"] if node.project else [name]
        for rt in types:  # a selected type with no object in the source: every name is unknown
            if rt.secret is not None and known[rt.secret.section] is None:
                known[rt.secret.section] = []
        if warning := unknown_names_warning(self.secrets.unknown_in(known)):
            log.warning(warning)

    def _unreadable(self, ctx: RunContext, types: list[ResourceType]) -> list[Outcome]:
        """Failed outcomes for what a key may not list, and no nodes for what cannot be written
        safely: a type the destination key cannot list could only be created blind (duplicates)."""
        outcomes = [
            refused(u.rt, u.what, "source_not_readable", u.error)
            for u in ctx.src_inv.unreadable
            if u.rt in types
        ]
        blind = {u.rt.kind: u for u in ctx.dst_inv.unreadable}
        for key, node in list(ctx.nodes.items()):
            if node.rt.kind in blind:
                del ctx.nodes[key]
                outcomes.append(refused_node(node, "destination_not_readable", blind[node.rt.kind].error))
        return outcomes

    def _merged_outcomes(self, ctx: RunContext) -> list[Outcome]:
        """A resumed run reports what the interrupted invocation wrote, not 'unchanged'."""
        for outcome in ctx.outcomes:
            before = self._earlier.get((outcome.kind, outcome.source_id))
            if before and outcome.action == "unchanged" and before["action"] in ("created", "updated"):
                outcome.action = before["action"]
        return ctx.outcomes

    def _record(self, ctx: RunContext, outcome: Outcome) -> None:
        ctx.record(outcome)
        self.progress.advance(outcome.type, outcome.action)
        if self.on_event:
            self.on_event({"event": "object", **outcome.to_dict()})
        if len(ctx.outcomes) % self.settings.migration_checkpoint_interval == 0 and self._checkpoint:
            self._checkpoint(ctx)
