"""One migration run: discover both orgs, list, plan the object graph, run it phase by
phase (org objects, projects concurrently, deferred references, settings, ACLs), report."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from braintrust_migrate.client import ApiClient, client_for
from braintrust_migrate.config import ConfigError, Settings
from braintrust_migrate.engine import narrate
from braintrust_migrate.engine.apply import migrate_node
from braintrust_migrate.engine.context import Options, RunContext
from braintrust_migrate.engine.events.reader import Window
from braintrust_migrate.engine.events.stage import (
    EventStage,
    RowPlanner,
    pins_of,
    plan_report,
    stream_report,
)
from braintrust_migrate.engine.events.stream import StreamOutcome, StreamSpec
from braintrust_migrate.engine.graph import Key, Node, link
from braintrust_migrate.engine.inventory import ALL_LISTABLE, Inventory, load_inventory, load_owned, relist
from braintrust_migrate.engine.progress import ProgressView
from braintrust_migrate.engine.report import Outcome, build_report, write_report
from braintrust_migrate.engine.resources import (
    BY_KIND,
    EVENT_STREAMS,
    PROJECT_TYPE,
    RESOURCE_TYPES,
    SELECTABLE,
    STREAM_SELECTIONS,
    EventStream,
    ResourceType,
)
from braintrust_migrate.engine.scope import owner_objects, project_of
from braintrust_migrate.engine.secrets_file import Secrets, unknown_names_warning
from braintrust_migrate.engine.state import STATE_FILE, StateStore
from braintrust_migrate.engine.statedir import (
    StateLock,
    check_state_file,
    make_private_dirs,
    resolve_state_dir,
)
from braintrust_migrate.engine.steps import Step, dependencies, order, repin_types, run_in_order
from braintrust_migrate.engine.tally import StreamTally
from braintrust_migrate.engine.users import build_user_map
from braintrust_migrate.liblog import get_logger
from braintrust_migrate.orgs import choose_org, ensure_distinct_orgs

log = get_logger(__name__)
T = TypeVar("T")

MAX_SETTLE_ROUNDS = 5


class MigrationInputError(ConfigError):
    """A selection or org choice that cannot work; reported in one line, exit code 2."""


@dataclass
class RunResult:
    report: dict[str, Any]
    report_path: Path
    summary_path: Path

    @property
    def ok(self) -> bool:
        return self.report["failed"] == 0


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM: the run stopped cleanly; `result` is its report so far (None before any)."""

    def __init__(self, result: RunResult | None) -> None:
        super().__init__("interrupted")
        self.result = result


async def discover_org(client: ApiClient, org_name: str | None) -> dict[str, Any]:
    """The org this side's key acts in; an OrgChoiceError (exit 2) when that is ambiguous."""
    return choose_org(await client.list_all("/v1/organization"), org_name, client.side)


def selected_projects(settings: Settings, inv: Inventory) -> dict[str, dict[str, Any]]:
    projects = {p["id"]: p for p in inv.of(PROJECT_TYPE.kind)}
    wanted = settings.migration_projects
    if not wanted:
        return projects
    names = {p.get("name"): pid for pid, p in projects.items()}
    loose = {str(name).strip(): pid for name, pid in names.items()}
    # Exact names first; "A , B" style lists add spaces that names rarely have.
    chosen = {want: names.get(want) or loose.get(want.strip()) for want in wanted}
    unknown = [name for name, pid in chosen.items() if pid is None]
    if unknown:
        known = sorted(str(n) for n in names)
        shown = ", ".join(map(repr, known[:30])) + (" …" if len(known) > 30 else "")
        raise MigrationInputError(
            f"unknown project(s) {', '.join(map(repr, unknown))}; projects in the source org: {shown}"
        )
    return {pid: projects[pid] for pid in chosen.values() if pid}


def run_types(selected: set[str]) -> list[ResourceType]:
    """The types a selection migrates: those named, and the facets of those named."""
    chosen = {rt.name for rt in RESOURCE_TYPES if rt.name in selected}
    return [
        rt
        for rt in RESOURCE_TYPES
        if rt.name in chosen or (rt.facet_of and BY_KIND[rt.facet_of].name in chosen)
    ]


def run_streams(selected: set[str]) -> list[EventStream]:
    return [stream for stream in EVENT_STREAMS if stream.selected_as in selected]


def build_nodes(
    settings: Settings, types: Iterable[ResourceType], inv: Inventory, projects: dict[str, dict[str, Any]]
) -> dict[Key, Node]:
    """One node per source object the run migrates: of the given types, in the selected projects
    (objects outside every project always), in the time window for the types it selects."""
    nodes: dict[Key, Node] = {}
    window = Window(settings.migration_created_after, settings.migration_created_before)
    for rt in types:
        for obj in inv.of(rt.facet_of or rt.kind):
            if not rt.admits(obj) or (rt.windowed and not window.admits(obj)):
                continue
            if rt.facet_of and not rt.body(obj):
                continue  # nothing of this part to write
            project_id = project_of(rt, obj, inv)
            if (rt.in_project or project_id is not None) and project_id not in projects:
                continue
            name = projects[project_id].get("name") if project_id else None
            named = rt.in_project or rt.facet_of is not None  # a facet reports its project's name
            node = Node(rt, obj, name if named else None, project_id if rt.in_project else None)
            nodes[node.key] = node
    return nodes


def outside_window(
    settings: Settings, types: Iterable[ResourceType], inv: Inventory, projects: dict[str, dict[str, Any]]
) -> set[Key]:
    """Selected objects the time window leaves out: references to them are dropped, not failed."""
    window = Window(settings.migration_created_after, settings.migration_created_before)
    return {
        (rt.kind, obj["id"])
        for rt in types
        if rt.windowed
        for obj in inv.of(rt.kind)
        if project_of(rt, obj, inv) in projects and not window.admits(obj)
    }


class PhaseClock:
    def __init__(self) -> None:
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        log.info("phase finished", phase=phase, seconds=round(now - self.last, 3))
        self.last = now


class Runner:
    def __init__(
        self,
        settings: Settings,
        options: Options,
        secrets: Secrets,
        progress: ProgressView | None = None,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.settings = settings
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

    def selection(self) -> set[str]:
        chosen = set(self.settings.migration_resources) or {rt.name for rt in SELECTABLE} | {
            *STREAM_SELECTIONS
        }
        return chosen | {PROJECT_TYPE.name}  # the projects that hold what it copies

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
            source, dest = client_for(self.settings, "source"), client_for(self.settings, "dest")
            async with source, dest:
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

    async def _run(self, source: ApiClient, dest: ApiClient) -> RunResult:
        s = self.settings
        source_org, dest_org = await asyncio.gather(
            discover_org(source, s.bt_source_org_name), discover_org(dest, s.bt_dest_org_name)
        )
        ensure_distinct_orgs(source_org, dest_org)
        # The state is checked and locked before anything is written to either org.
        location = resolve_state_dir(s.migration_state_dir, source_org, dest_org)
        folder = location.folder
        make_private_dirs(folder)
        lock = StateLock(folder)
        lock.acquire()
        try:
            aside = check_state_file(folder / STATE_FILE, fresh=self.options.fresh)
            if aside:
                log.warning("unusable state moved aside; starting a new state", moved_to=str(aside))
            state = StateStore(folder / STATE_FILE)
            try:
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
        source: ApiClient,
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
        source_types = [rt for rt in ALL_LISTABLE if rt in types or rt.always_listed]
        listed = time.perf_counter()
        # The destination's later phases are listed when they start (they see this run's writes).
        src_inv, dst_inv = await asyncio.gather(
            load_inventory(source, s.bt_source_org_name, source_types),
            load_inventory(dest, s.bt_dest_org_name, [rt for rt in ALL_LISTABLE if rt.phase == "objects"]),
        )
        log.info("phase finished", phase="listing both orgs", seconds=round(time.perf_counter() - listed, 3))
        projects = selected_projects(s, src_inv)
        for rt in types:
            if rt.per_owner:
                await load_owned(source, src_inv, rt, owner_objects(rt, src_inv, projects))
        users = await build_user_map(
            source,
            dest,
            enabled=self.options.map_users,
            invite=self.options.invite_users,
            dry_run=self.options.dry_run,
            source_org=s.bt_source_org_name,
            dest_org=s.bt_dest_org_name,
        )
        ctx = RunContext(
            source=source,
            dest=dest,
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
            outside_window=outside_window(s, types, src_inv, projects),
        )
        self._warn_unknown_secrets(ctx, types)
        refused = self._unreadable(ctx, types)
        link(ctx.nodes)
        loop = asyncio.get_running_loop()
        for node in ctx.nodes.values():
            node.done = loop.create_future()
        base = {
            "run_id": run_id,
            "dry_run": self.options.dry_run,
            "source_org": source_org.get("name"),
            "dest_org": dest_org.get("name"),
            "source_org_id": source_org["id"],
            "dest_org_id": dest_org["id"],
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "resumed": invocations > 1,
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
                users.unmapped_emails() if users.enabled else [],
                stream_report(self.tally.merged(self.streams, interrupted=interrupted)),
                users_mapped=users.enabled,
            )
            if self.options.dry_run:
                data["events"]["plan"] = plan_report(self.row_plan)
            return (data, *write_report(run_folder, data))

        # What the interrupted invocation of this run recorded, read before this one overwrites it.
        self._earlier = (
            {} if self.options.dry_run else {(o["kind"], o["source_id"]): o for o in state.outcomes(run_id)}
        )
        self._checkpoint = lambda _ctx: report(final=False)
        self.progress.start(Counter(node.rt.name for node in ctx.nodes.values()))
        for outcome in refused:
            self._record(ctx, outcome)
        try:
            await self._steps(ctx, types, streams)
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
        return RunResult(data, json_path, text_path)

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
            self._refused(u.rt, u.what, "source_not_readable", u.error)
            for u in ctx.src_inv.unreadable
            if u.rt in types
        ]
        blind = {u.rt.kind: u for u in ctx.dst_inv.unreadable}
        for key, node in list(ctx.nodes.items()):
            if node.rt.kind in blind:
                del ctx.nodes[key]
                outcome = self._refused(
                    node.rt, node.name, "destination_not_readable", blind[node.rt.kind].error
                )
                outcome.source_id, outcome.project = node.src["id"], node.project
                outcomes.append(outcome)
        return outcomes

    @staticmethod
    def _refused(rt: ResourceType, name: str, reason: str, error: Any) -> Outcome:
        return Outcome(
            type=rt.name, kind=rt.kind, name=name, source_id=f"*{name}", action="failed", reason=reason,
            error=error.to_dict(),
        )  # fmt: skip

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

    async def _steps(self, ctx: RunContext, types: list[ResourceType], streams: list[EventStream]) -> None:
        """Every step of the run in the order the tables imply (engine/steps.py)."""
        clock = PhaseClock()
        s = self.settings
        per_type: dict[tuple[str | None, str], asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(s.migration_max_concurrent_resources)
        )
        graph = dependencies(types, streams)
        log.debug("run order", steps=order(graph))
        totals = self.progress.add_rows_total if self.progress.enabled else None

        def on_rows(spec: StreamSpec, rows: int, nbytes: int) -> None:
            self.tally.on_rows(spec, rows, nbytes)
            self.progress.advance_rows(spec, rows, nbytes)
            if self.on_event:
                self.on_event({"event": "rows", "spec": spec, "rows": rows, "bytes": nbytes})

        stage = EventStage(ctx, s, on_rows, totals)

        async def run(step: Step) -> None:
            if step.phase == "objects":
                await self._objects(ctx, per_type)
                await self._settle_deferred(ctx)
            elif step.phase is not None:
                await self._later_phase(ctx, step.phase, per_type)
            elif step.stream is not None:
                await self._rows(ctx, stage, step.stream)
            elif step.repin is not None and not self.options.dry_run:
                await self._repin(ctx, types, step.repin)
            clock.lap(step.name)

        await run_in_order(graph, run)

    async def _objects(
        self, ctx: RunContext, per_type: dict[tuple[str | None, str], asyncio.Semaphore]
    ) -> None:
        """Objects outside projects (projects included) first, then every project's at once."""
        nodes = [n for n in ctx.nodes.values() if n.rt.phase == "objects"]
        narrate.org_phase_started()
        await self._run_dag(ctx, [n for n in nodes if n.project_id is None], per_type)
        by_project: dict[str, list[Node]] = {}
        for node in nodes:
            if node.project_id is not None:
                by_project.setdefault(node.project_id, []).append(node)
        project_slots = asyncio.Semaphore(self.settings.migration_max_concurrent)
        starts = narrate.ProjectStarts(len(by_project))

        async def one_project(members: list[Node]) -> None:
            async with project_slots:
                starts(members[0].project)
                await self._run_dag(ctx, members, per_type)

        await asyncio.gather(*(one_project(members) for members in by_project.values()))

    async def _later_phase(
        self, ctx: RunContext, phase: str, per_type: dict[tuple[str | None, str], asyncio.Semaphore]
    ) -> None:
        """A phase after the objects: its destination objects are read again first (the run has
        written since), then its objects are written with every reference final."""
        nodes = [n for n in ctx.nodes.values() if n.rt.phase == phase]
        listed = {n.rt.name: n.rt for n in nodes if n.rt in ALL_LISTABLE}
        for rt in listed.values():
            if await relist(ctx.dest, ctx.dst_inv, ctx.dest_org_name, rt):
                continue
            error = ctx.dst_inv.unreadable[-1].error
            for node in [n for n in nodes if n.rt is rt]:
                nodes.remove(node)
                if node.done is not None and not node.done.done():
                    node.done.set_result(None)
                outcome = self._refused(rt, node.name, "destination_not_readable", error)
                outcome.source_id, outcome.project = node.src["id"], node.project
                self._record(ctx, outcome)
        await self._run_dag(ctx, nodes, per_type, final=True)

    async def _bounded(self, coroutines: Iterable[Awaitable[T]]) -> list[T]:
        """Run independent steps concurrently, as many at once as one resource type may."""
        slots = asyncio.Semaphore(self.settings.migration_max_concurrent_resources)

        async def one(step: Awaitable[T]) -> T:
            async with slots:
                return await step

        return list(await asyncio.gather(*(one(step) for step in coroutines)))

    async def _rows(self, ctx: RunContext, stage: EventStage, stream: EventStream) -> None:
        """One stream's rows; a dry run reads, per container, how many the real run would copy."""
        if self.options.dry_run:
            self.row_plan += await RowPlanner(ctx, self.settings).plan(stage.specs(stream, planned=True))
            return
        self.streams += await stage.run_streams(stage.specs(stream))
        stage.record_pins(stream)

    async def _repin(self, ctx: RunContext, types: list[ResourceType], stream: EventStream) -> None:
        """Objects pinning a version of `stream`'s rows, written again now that those rows exist."""
        pinning = set(repin_types(types, stream))
        outcomes = {(o.kind, o.source_id): o for o in ctx.outcomes}
        todo = [
            (outcomes[node.key], node)
            for node in ctx.nodes.values()
            if node.rt in pinning
            and node.key in outcomes
            and pins_of(node.rt, node.src)
            and outcomes[node.key].action not in ("failed", "skipped", "conflict")
        ]
        seconds = await self._bounded(migrate_node(ctx, node, final=True) for _, node in todo)
        for (first, _), second in zip(todo, seconds, strict=True):
            self._merge_settled(ctx, first, second)

    async def _run_dag(
        self,
        ctx: RunContext,
        nodes: list[Node],
        sems: dict[tuple[str | None, str], asyncio.Semaphore],
        *,
        final: bool = False,
    ) -> None:
        async def one(node: Node) -> None:
            assert node.done is not None
            try:
                for dep in node.deps:
                    dep_done = ctx.nodes[dep].done
                    if dep_done is not None:
                        await asyncio.shield(dep_done)
                # A batched type's writers must meet in its batcher: the batch bounds them.
                slot = contextlib.nullcontext() if node.rt.batch else sems[(node.project_id, node.rt.name)]
                async with slot:
                    outcome = await migrate_node(ctx, node, final=final)
                self._record(ctx, outcome)
                node.done.set_result(outcome.dest_id if outcome.action != "failed" else None)
            finally:
                if not node.done.done():
                    node.done.set_result(None)

        await asyncio.gather(*(one(node) for node in nodes))

    async def _settle_deferred(self, ctx: RunContext) -> None:
        """Patch in references that pointed at objects created later (cycles, other projects).

        Writing an object gives it a new transaction id, so objects pinning a version of
        one just patched are revisited until nothing changes (a few rounds at most).
        """
        by_key = {(o.kind, o.source_id): o for o in ctx.outcomes}
        todo = [o for o in ctx.outcomes if o.pending]
        for _ in range(MAX_SETTLE_ROUNDS):
            if not todo:
                return
            rewritten: set[Key] = set()
            nodes = [ctx.nodes[(first.kind, first.source_id)] for first in todo]
            seconds = await self._bounded(migrate_node(ctx, node, final=True) for node in nodes)
            for first, node, second in zip(todo, nodes, seconds, strict=True):
                self._merge_settled(ctx, first, second)
                if second.action in ("created", "updated"):
                    rewritten.add(node.key)
            todo = [
                by_key[node.key]
                for node in ctx.nodes.values()
                if (node.deps | node.soft) & rewritten
                and node.key in by_key
                and by_key[node.key].action not in ("failed", "skipped", "conflict")
            ]

    def _merge_settled(self, ctx: RunContext, first: Outcome, second: Outcome) -> None:
        first.pending = second.pending
        if second.action == "failed" or first.action == "unchanged":
            first.action, first.reason, first.error = second.action, second.reason, second.error
        first.unresolved = second.unresolved
        first.notes += [n for n in second.notes if n not in first.notes]
        if (
            second.action in ("updated", "created")
            and "references patched in after creation" not in first.notes
        ):
            first.notes.append("references patched in after creation")
        first.dest_id = second.dest_id or first.dest_id
        if not self.options.dry_run:
            ctx.state.record_outcome(ctx.run_id, first.kind, first.source_id, first.to_dict())
