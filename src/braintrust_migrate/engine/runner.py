"""One migration run: discover both orgs, list, plan the object graph, run it phase by
phase (org objects, projects concurrently, deferred references, settings, ACLs), report."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from braintrust_migrate.client import ApiClient, client_for
from braintrust_migrate.config import ConfigError, Settings
from braintrust_migrate.engine import narrate
from braintrust_migrate.engine.apply import migrate_node
from braintrust_migrate.engine.context import Options, RunContext
from braintrust_migrate.engine.events.reader import Window
from braintrust_migrate.engine.events.stage import EventStage, RowPlanner, plan_report, stream_report
from braintrust_migrate.engine.events.stream import StreamOutcome, StreamSpec
from braintrust_migrate.engine.extras import migrate_acls, migrate_settings
from braintrust_migrate.engine.graph import Key, Node, link
from braintrust_migrate.engine.inventory import ALL_LISTABLE, Inventory, load_inventory, load_views
from braintrust_migrate.engine.progress import ProgressView
from braintrust_migrate.engine.report import Outcome, build_report, write_report
from braintrust_migrate.engine.resources import BY_NAME, RESOURCE_TYPES, VIEW_OBJECT_TYPES
from braintrust_migrate.engine.secrets_file import Secrets, unknown_names_warning
from braintrust_migrate.engine.state import STATE_FILE, StateStore
from braintrust_migrate.engine.statedir import (
    StateLock,
    check_state_file,
    make_private_dirs,
    resolve_state_dir,
)
from braintrust_migrate.engine.tally import StreamTally
from braintrust_migrate.engine.users import build_user_map
from braintrust_migrate.orgs import choose_org, ensure_distinct_orgs

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Selectable names that are not object types: event streams.
STREAMED = ("logs",)
# Created after dataset rows are copied: they pin dataset versions.
AFTER_ROWS = frozenset({"dataset_snapshot"})
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
    projects = {p["id"]: p for p in inv.of("project")}
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


def build_nodes(
    settings: Settings, selected: set[str], inv: Inventory, projects: dict[str, dict]
) -> dict[Key, Node]:
    nodes: dict[Key, Node] = {}
    window = Window(settings.migration_created_after, settings.migration_created_before)

    def add(rt_name: str, obj: dict[str, Any], project_id: str | None) -> None:
        project = projects.get(project_id) if project_id else None
        node = Node(BY_NAME[rt_name], obj, project.get("name") if project else None, project_id)
        nodes[node.key] = node

    for project in projects.values():
        add("projects", project, None)
    for rt in RESOURCE_TYPES:
        if rt.name not in selected or rt.name in (
            "projects",
            "views",
            "env_vars",
            "org_env_vars",
            "dataset_snapshots",
        ):
            continue
        for obj in inv.of(rt.kind):
            if rt.scope == "org":
                add(rt.name, obj, None)
            elif obj.get("project_id") in projects and (rt.kind != "experiment" or window.admits(obj)):
                add(rt.name, obj, obj["project_id"])
    for obj in inv.of("env_var"):
        owner_type, owner = obj.get("object_type"), obj.get("object_id")
        if owner_type == "organization" and "org_env_vars" in selected:
            add("org_env_vars", obj, None)
        elif owner_type == "project" and "env_vars" in selected and owner in projects:
            add("env_vars", obj, owner)
        elif owner_type == "function" and "env_vars" in selected:
            function = inv.get("function", owner) or inv.get("prompt", owner) or {}
            if function.get("project_id") in projects:
                add("env_vars", obj, function["project_id"])
    if "dataset_snapshots" in selected:
        for snapshot in inv.of("dataset_snapshot"):
            dataset = inv.get("dataset", snapshot.get("dataset_id", "")) or {}
            if dataset.get("project_id") in projects:
                add("dataset_snapshots", snapshot, dataset["project_id"])
    if "views" in selected:
        for view in inv.of("view"):
            owner_kind = VIEW_OBJECT_TYPES.get(view.get("object_type", ""))
            owner = inv.get(owner_kind, view.get("object_id", "")) if owner_kind else None
            if owner_kind == "project" and view["object_id"] in projects:
                add("views", view, view["object_id"])
            elif owner and owner.get("project_id") in projects:
                add("views", view, owner["project_id"])
    return nodes


def outside_window(
    settings: Settings, selected: set[str], inv: Inventory, projects: dict[str, dict]
) -> set[Key]:
    """Selected experiments the time window leaves out: references to them are dropped, not failed."""
    if "experiments" not in selected:
        return set()
    window = Window(settings.migration_created_after, settings.migration_created_before)
    return {
        ("experiment", e["id"])
        for e in inv.of("experiment")
        if e.get("project_id") in projects and not window.admits(e)
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
        self, settings: Settings, options: Options, secrets: Secrets, progress: ProgressView | None = None
    ):
        self.settings = settings
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
        chosen = set(self.settings.migration_resources) or {rt.name for rt in RESOURCE_TYPES} | {
            "acls",
            *STREAMED,
        }
        return chosen | {"projects"}

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

        installed: dict[int, Any] = {}
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
        source_org: dict,
        dest_org: dict,
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
        source_types = [rt for rt in ALL_LISTABLE if rt.name in selected or rt.name in ("projects", "roles")]
        if "org_env_vars" in selected:
            source_types.append(BY_NAME["env_vars"])
        listed = time.perf_counter()
        src_inv, dst_inv = await asyncio.gather(
            load_inventory(source, s.bt_source_org_name, source_types),
            load_inventory(dest, s.bt_dest_org_name, ALL_LISTABLE),
        )
        log.info("phase finished", phase="listing both orgs", seconds=round(time.perf_counter() - listed, 3))
        projects = selected_projects(s, src_inv)
        if "views" in selected:
            owners = [("project", pid) for pid in projects]
            owners += [
                (t, o["id"])
                for t, k in VIEW_OBJECT_TYPES.items()
                if k != "project"
                for o in src_inv.of(k)
                if o.get("project_id") in projects
            ]
            await load_views(source, src_inv, owners)
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
            source,
            dest,
            state,
            run_id,
            self.options,
            source_org,
            dest_org,
            s.bt_source_org_name,
            s.bt_dest_org_name,
            self.secrets,
            users,
            src_inv,
            dst_inv,
        )
        ctx.nodes = build_nodes(s, selected, src_inv, projects)
        ctx.outside_window = outside_window(s, selected, src_inv, projects)
        self._warn_unknown_secrets(ctx, selected)
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
        try:
            await self._phases(ctx, selected)
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

    def _warn_unknown_secrets(self, ctx: RunContext, selected: set[str]) -> None:
        """A secrets-file name that matches nothing in the source is most likely misspelt."""
        names = [(n.rt.kind, n.project, n.src.get("name", "")) for n in ctx.nodes.values()]
        envs = [(project, name) for kind, project, name in names if kind == "env_var"]
        unknown = self.secrets.unknown_names(
            [name for kind, _, name in names if kind == "ai_secret"] if "ai_secrets" in selected else None,
            [*(name for _, name in envs), *(f"{p}/{name}" for p, name in envs if p)]
            if {"env_vars", "org_env_vars"} & selected
            else None,
        )
        if warning := unknown_names_warning(unknown):
            log.warning(warning)

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
        if len(ctx.outcomes) % self.settings.migration_checkpoint_interval == 0 and self._checkpoint:
            self._checkpoint(ctx)

    async def _phases(self, ctx: RunContext, selected: set[str]) -> None:
        clock = PhaseClock()
        s = self.settings
        per_type: dict[tuple[str | None, str], asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(s.migration_max_concurrent_resources)
        )
        org_nodes = [n for n in ctx.nodes.values() if n.project_id is None]
        narrate.org_phase_started()
        await self._run_dag(ctx, org_nodes, per_type)
        clock.lap("org objects and projects")
        by_project: dict[str, list[Node]] = {}
        for node in ctx.nodes.values():
            if node.project_id is not None and node.rt.kind not in AFTER_ROWS:
                by_project.setdefault(node.project_id, []).append(node)
        project_slots = asyncio.Semaphore(s.migration_max_concurrent)
        starts = narrate.ProjectStarts(len(by_project))

        async def one_project(nodes: list[Node]) -> None:
            async with project_slots:
                starts(nodes[0].project)
                await self._run_dag(ctx, nodes, per_type)

        await asyncio.gather(*(one_project(nodes) for nodes in by_project.values()))
        clock.lap("project objects")
        await self._settle_deferred(ctx)
        clock.lap("deferred references")
        if "projects" in selected:
            projects = [node for node in org_nodes if node.rt.kind == "project"]
            for outcome in await self._bounded(migrate_settings(ctx, node) for node in projects):
                if outcome:
                    self._record(ctx, outcome)
        clock.lap("project settings")
        if "acls" in selected:
            await migrate_acls(ctx)
            clock.lap("acls")
        if not self.options.dry_run:
            await self._events(ctx, selected)
            clock.lap("event data")
        else:
            await self._after_rows(ctx)
            await self._plan_rows(ctx, selected)

    async def _bounded(self, coroutines: Iterable[Awaitable[T]]) -> list[T]:
        """Run independent steps concurrently, as many at once as one resource type may."""
        slots = asyncio.Semaphore(self.settings.migration_max_concurrent_resources)

        async def one(step: Awaitable[T]) -> T:
            async with slots:
                return await step

        return list(await asyncio.gather(*(one(step) for step in coroutines)))

    async def _after_rows(self, ctx: RunContext) -> None:
        nodes = [node for node in ctx.nodes.values() if node.rt.kind in AFTER_ROWS]
        for outcome in await self._bounded(migrate_node(ctx, node) for node in nodes):
            self._record(ctx, outcome)

    async def _plan_rows(self, ctx: RunContext, selected: set[str]) -> None:
        """A dry run reads, per container, how many rows the real run would copy."""
        stage = EventStage(ctx, self.settings, selected, lambda *_: None, None)
        kinds = ("dataset", "experiment", "project_logs")
        specs = [spec for kind in kinds for spec in stage.specs(kind, planned=True)]
        self.row_plan = await RowPlanner(ctx, self.settings).plan(specs)

    async def _events(self, ctx: RunContext, selected: set[str]) -> None:
        """Dataset rows, then what pins their versions, then experiment rows and logs."""
        totals = self.progress.add_rows_total if self.progress.enabled else None

        def on_rows(spec: StreamSpec, rows: int, nbytes: int) -> None:
            self.tally.on_rows(spec, rows, nbytes)
            self.progress.advance_rows(spec, rows, nbytes)

        stage = EventStage(ctx, self.settings, selected, on_rows, totals)
        self.streams = await stage.run_streams(stage.specs("dataset"))
        stage.record_pins()
        repin = [
            o
            for o in ctx.outcomes
            if o.kind == "experiment" and ctx.nodes[(o.kind, o.source_id)].src.get("dataset_version")
        ]
        repin = [o for o in repin if o.action not in ("failed", "skipped", "conflict")]
        seconds = await self._bounded(
            migrate_node(ctx, ctx.nodes[(o.kind, o.source_id)], final=True) for o in repin
        )
        for first, second in zip(repin, seconds, strict=True):
            self._merge_settled(ctx, first, second)
        await self._after_rows(ctx)
        self.streams += await stage.run_streams(stage.specs("experiment") + stage.specs("project_logs"))

    async def _run_dag(
        self, ctx: RunContext, nodes: list[Node], sems: dict[tuple[str | None, str], asyncio.Semaphore]
    ) -> None:
        async def one(node: Node) -> None:
            assert node.done is not None
            try:
                for dep in node.deps:
                    dep_done = ctx.nodes[dep].done
                    if dep_done is not None:
                        await asyncio.shield(dep_done)
                async with sems[(node.project_id, node.rt.name)]:
                    outcome = await migrate_node(ctx, node)
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
        todo = [o for o in ctx.outcomes if any(n.startswith("deferred: ") for n in o.notes)]
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
        first.notes = [n for n in first.notes if not n.startswith("deferred: ")]
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
