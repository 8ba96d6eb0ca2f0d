"""The chaos scenario runner: seed a source org, then interrupt the installed `migrate`
(SIGINT or SIGKILL) at many random moments spread over the object and event phases,
under injected faults, sometimes switching the state dir or starting `--fresh`; then one
final run without faults. The oracle then judges the destination, and the source's write
counter and fingerprint must be unchanged. Everything random comes from the scenario seed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from braintrust_migrate.sandbox.faults import FaultSettings
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer
from braintrust_migrate.sandbox.testing import unique_org_name
from tests.oracle import OracleResult, compare_orgs, fingerprint
from tests.oracle.reader import OrgReader

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))
# An interrupted attempt may end like this: 130 (SIGINT handled), killed, done, or failed.
ACCEPTED_EXITS = frozenset({130, -signal.SIGKILL, 128 + signal.SIGKILL, 0, 1})
STARTUP = 0.15  # share of a run spent before it reads anything (interpreter start): no delay below it
SIGINT_GRACE = 30.0
MIN_WORK_INTERRUPTS = 5  # interrupts that must land before a destination is first complete
MAX_RESTARTS = 3  # seconds a SIGINT'ed run may take to stop before it counts as a hang
LAST_OBJECT_PHASE = "acls"  # the phase logged as finished just before rows start streaming


@dataclass(frozen=True)
class Scenario:
    seed: int
    interrupts: int = 20
    rows: int = 200
    profile: str = "small"
    max_attempts: int = 60  # attempts that end before their signal do not count as interrupts


@dataclass
class Attempt:
    args: list[str]
    signal: str | None  # the signal sent, None when the run ended before it
    window: str  # "objects" or "events": where the delay was drawn
    delay: float
    exit_code: int
    stopped_in: float  # seconds from the signal to the exit
    ran_for: float = 0.0
    after_complete: bool = False  # an earlier attempt had already finished the migration
    stderr_tail: str = ""


@dataclass
class ScenarioReport:
    scenario: Scenario
    calibration: dict[str, float] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    final_exit: int | None = None
    calibration_failure: str = ""  # the uninterrupted run under faults failed
    restarts: int = 0  # new destinations started because a run finished too early
    faults: Counter[str] = field(default_factory=Counter)  # what the sandbox injected, over all attempts
    final_stderr: str = ""
    source_writes: int = 0
    source_changed: bool = False
    oracle: OracleResult | None = None

    @property
    def interrupts(self) -> int:
        return sum(1 for a in self.attempts if a.signal)

    def exit_problems(self) -> list[str]:
        """Interrupted attempts that ended other than 130 / killed / done / failed (1, not after SIGINT)."""
        out = []
        for index, a in enumerate(self.attempts):
            if a.exit_code not in ACCEPTED_EXITS or (a.signal == "SIGINT" and a.exit_code == 1):
                where = (
                    "after the migration had completed once" if a.after_complete else "during the migration"
                )
                out.append(
                    f"attempt {index}: {a.signal} after {a.delay:.2f}s ({a.window} window, {where}) "
                    f"ended with exit {a.exit_code}; stderr: {a.stderr_tail[-300:]!r}"
                )
        return out

    def result_problems(self, calibration: bool = True) -> list[str]:
        """The final run failed, or the source was written to or changed (or, with `calibration`,
        the uninterrupted run under faults failed)."""
        out = []
        if calibration and self.calibration_failure:
            out.append(f"an uninterrupted run under faults failed: {self.calibration_failure}")
        if self.final_exit != 0:
            out.append(f"final run exit {self.final_exit}: {self.final_stderr[-1500:]}")
        if self.source_writes:
            out.append(f"{self.source_writes} write requests with the source key")
        if self.source_changed:
            out.append("the source org's content changed")
        return out

    def problems(self) -> list[str]:
        return self.exit_problems() + self.result_problems()

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.scenario.seed,
            "interrupts": self.interrupts,
            "attempts": len(self.attempts),
            "signals": dict(Counter(a.signal for a in self.attempts if a.signal)),
            "windows": dict(Counter(a.window for a in self.attempts if a.signal)),
            "exits": dict(Counter(a.exit_code for a in self.attempts)),
            "fresh": sum(1 for a in self.attempts if "--fresh" in a.args),
            "state_dirs": dict(Counter(Path(a.args[-1]).name for a in self.attempts)),
            "interrupts_before_first_completion": sum(
                1 for a in self.attempts if a.signal and not a.after_complete
            ),
            "calibration": self.calibration,
            "restarts": self.restarts,
            "faults": dict(self.faults),
            "final_exit": self.final_exit,
            "problems": self.problems(),
            "oracle": {k: len(v) for k, v in (self.oracle.differences if self.oracle else {}).items()},
            "oracle_detail": self.oracle.summary(4) if self.oracle and not self.oracle.ok else "",
        }

    def assert_result_exact(
        self, only: frozenset[str] | None = None, but: frozenset[str] = frozenset(), calibration: bool = True
    ) -> None:
        """The final state is exact: the oracle's categories (all, or `only` these, minus `but`)."""
        problems = self.result_problems(calibration)
        if self.oracle is None:
            raise AssertionError(f"scenario {self.scenario.seed}: no oracle run; {problems}")
        found = {
            k: v
            for k, v in self.oracle.differences.items()
            if v and (only is None or k in only) and k not in but
        }
        if problems or found:
            raise AssertionError(
                f"scenario {self.scenario.seed}: {problems} {sorted(found)}\n{self.oracle.summary()}"
            )

    def assert_exits_accepted(self) -> None:
        problems = self.exit_problems()
        if problems:
            raise AssertionError(f"scenario {self.scenario.seed}:\n" + "\n".join(problems))


def faults(rng: random.Random) -> FaultSettings:
    """5xx, 429 bursts and dropped connections (before or after the write), seeded."""
    return FaultSettings(
        error_rate=rng.choice((0.03, 0.06, 0.1)),
        max_concurrent_per_key=rng.choice((2, 3, 4)),
        retry_after_seconds=0,
        drop_rate=rng.choice((0.02, 0.05)),
        drop_phase="random",
        seed=rng.randrange(1 << 30),
        exclude_paths=("/_sandbox",),
    )


class ChaosRun:
    def __init__(self, server: SandboxServer, work: Path, scenario: Scenario) -> None:
        self.server, self.work, self.scenario = server, work, scenario
        self.rng = random.Random(scenario.seed)
        self.url = server.url
        self.calibration_failure = ""

    def env(self, source: SandboxOrg, dest: SandboxOrg) -> dict[str, str]:
        return {
            **os.environ,
            "BT_SOURCE_URL": self.url,
            "BT_DEST_URL": self.url,
            "BT_SOURCE_API_KEY": source.api_key,
            "BT_DEST_API_KEY": dest.api_key,
            "MIGRATION_MAX_CONCURRENT_REQUESTS": "4",
            "MIGRATION_RETRY_ATTEMPTS": "12",
            "MIGRATION_RETRY_DELAY": "0.01",
            "MIGRATION_RETRY_MAX_DELAY": "0.2",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
        }

    def start(self, source: SandboxOrg, dest: SandboxOrg, args: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [SCRIPT, "migrate", "--map-users", *args],
            env=self.env(source, dest),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def seed(self, org: SandboxOrg) -> None:
        s = self.scenario
        cmd = [SCRIPT, "sandbox", "seed", "--url", self.url, "--api-key", org.api_key]
        cmd += ["--profile", s.profile, "--seed", str(s.seed), "--rows", str(s.rows)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def calibrate(self, source: SandboxOrg, emails: list[str]) -> dict[str, float]:
        """One uninterrupted run (faults on) into a throwaway org: when the event phase starts, when it ends."""
        scratch = self.server.create_org(unique_org_name("chaos-calibration"), users=emails)
        self.server.set_faults(faults(random.Random(self.scenario.seed)), org=scratch.name)
        started = time.monotonic()
        proc = self.start(source, scratch, ["--state-dir", str(self.work / "calibration")])
        events_start = None
        tail: deque[bytes] = deque(maxlen=8)
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line)
            if events_start is None and _phase_finished(line) == LAST_OBJECT_PHASE:
                events_start = time.monotonic() - started
        code = proc.wait(timeout=300)
        total = time.monotonic() - started
        self.server.set_faults(None, org=scratch.name)
        if code != 0:  # an uninterrupted run under faults should not fail: a finding of its own
            self.calibration_failure = f"exit {code}: {_text(tail)[-1500:]}"
        events = events_start if events_start is not None else total * 0.6
        return {"total": round(total, 2), "events_start": round(events, 2)}

    def run(self) -> ScenarioReport:
        report = ScenarioReport(self.scenario)
        s, rng = self.scenario, self.rng
        source = self.server.create_org(unique_org_name(f"chaos-src-{s.seed}"))
        self.seed(source)
        dest = self.server.create_org(unique_org_name(f"chaos-dst-{s.seed}"))
        with OrgReader(self.url, dest.api_key) as reader:
            emails = [u["email"] for u in reader.list("/v1/user")]
        writes_before = self.server.write_count(source.api_key)
        untouched = fingerprint(self.url, source.api_key)
        cal = report.calibration = self.calibrate(source, emails)
        report.calibration_failure = self.calibration_failure
        # Delays are drawn before the event phase (object work) or inside it, as shares of the
        # run's expected length; a resumed run is shorter, so the length follows the last completed run.
        horizon, events_share = cal["total"], cal["events_start"] / cal["total"]
        state_dirs = [self.work / "state-a", self.work / "state-b"]
        current = 0
        fault_rng = random.Random(s.seed * 7919)
        completed, work_interrupts = False, 0
        while report.interrupts < s.interrupts and len(report.attempts) < s.max_attempts:
            if rng.random() < 0.12:
                current = 1 - current
            args = ["--state-dir", str(state_dirs[current])]
            if rng.random() < 0.1:
                args.insert(0, "--fresh")
            window = "objects" if rng.random() < 0.5 else "events"
            low, high = (STARTUP, events_share) if window == "objects" else (events_share, 1.0)
            delay = rng.uniform(low * horizon, high * horizon)
            sig = signal.SIGINT if rng.random() < 0.5 else signal.SIGKILL
            self.server.set_faults(faults(fault_rng), org=dest.name)
            self.server.set_faults(faults(fault_rng), org=source.name)
            attempt = self.attempt(source, dest, args, window, delay, sig)
            for org in (dest, source):
                stats = self.server.fault_stats(org.name)
                for name in ("requests", "rate_limited", "server_errors", "drops_before", "drops_after"):
                    report.faults[name] += getattr(stats, name)
            attempt.after_complete = completed
            report.attempts.append(attempt)
            work_interrupts += bool(attempt.signal and not completed)
            if attempt.signal is None and attempt.exit_code == 0:
                horizon = max(attempt.ran_for, 0.5)
                if work_interrupts < MIN_WORK_INTERRUPTS and report.restarts < MAX_RESTARTS:
                    # Finished before enough interrupts hit real work: start over into a new org.
                    report.restarts += 1
                    dest = self.server.create_org(unique_org_name(f"chaos-dst-{s.seed}"))
                    state_dirs = [self.work / f"state-{report.restarts}-{x}" for x in "ab"]
                    work_interrupts = 0
                else:
                    completed = True
        self.server.set_faults(None, org=dest.name)
        self.server.set_faults(None, org=source.name)
        final = self.start(source, dest, ["--state-dir", str(state_dirs[current])])
        _, err = final.communicate(timeout=300)
        report.final_exit, report.final_stderr = final.returncode, err.decode(errors="replace")
        report.source_writes = self.server.write_count(source.api_key) - writes_before
        report.source_changed = fingerprint(self.url, source.api_key) != untouched
        report.oracle = compare_orgs(self.url, source.api_key, dest.api_key)
        return report

    def attempt(
        self, source: SandboxOrg, dest: SandboxOrg, args: list[str], window: str, delay: float, sig: int
    ) -> Attempt:
        started = time.monotonic()
        proc = self.start(source, dest, args)
        tail: deque[bytes] = deque(maxlen=6)
        drain = threading.Thread(target=_drain, args=(proc, tail), daemon=True)
        drain.start()
        try:
            proc.wait(timeout=delay)
            ran = time.monotonic() - started
            drain.join(timeout=5)
            return Attempt(
                args, None, window, round(delay, 3), proc.returncode, 0.0, ran, stderr_tail=_text(tail)
            )
        except subprocess.TimeoutExpired:
            pass
        proc.send_signal(sig)
        sent = time.monotonic()
        try:
            code = proc.wait(timeout=SIGINT_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()  # a SIGINT that did not stop the run: recorded by its exit code
            proc.wait(timeout=30)
            code = -999
        drain.join(timeout=5)
        stopped = time.monotonic()
        name = signal.Signals(sig).name
        return Attempt(
            args,
            name,
            window,
            round(delay, 3),
            code,
            stopped - sent,
            stopped - started,
            stderr_tail=_text(tail),
        )


def _drain(proc: subprocess.Popen[bytes], tail: deque[bytes]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        tail.append(line)


def _text(tail: deque[bytes]) -> str:
    return b"".join(tail).decode(errors="replace")


def _phase_finished(line: bytes) -> str | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return (
        str(entry.get("phase"))
        if isinstance(entry, dict) and entry.get("event") == "phase finished"
        else None
    )


def run_scenario(server: SandboxServer, work: Path, scenario: Scenario) -> ScenarioReport:
    report = ChaosRun(server, work, scenario).run()
    out = os.environ.get("CHAOS_REPORT")
    if out:  # one JSON line per scenario, for a by-hand campaign
        with open(out, "a") as f:
            f.write(json.dumps(report.summary() | {"scenario": asdict(scenario)}) + "\n")
    return report
