"""What a person sees while `migrate` runs: the live display in a pseudo-terminal, plain progress
lines when stderr is not a terminal, output that survives pipes, readable --help, and log lines
shaped like the product brief's. The installed CLI runs against a seeded sandbox."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import httpx
import pytest

from braintrust_migrate.sandbox.seed.run import seed_org_sync
from braintrust_migrate.sandbox.testing import unique_org_name

SCRIPT = str(Path(sys.executable).parent / "braintrust-migrate")
ROWS = 1500
LABELS = ("dataset rows", "experiment rows", "logs rows")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \[")
ANSI = re.compile(r"\x1b")


@pytest.fixture(scope="module")
def seeded(sandbox_server):
    source = sandbox_server.create_org(unique_org_name("live-src"))
    result = seed_org_sync(sandbox_server.url, source.api_key, profile="small", rows=ROWS)
    return sandbox_server, source, result


def _env(server, source, dest, state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(
        BT_SOURCE_URL=server.url,
        BT_DEST_URL=server.url,
        BT_SOURCE_API_KEY=source.api_key,
        BT_DEST_API_KEY=dest.api_key,
        MIGRATION_STATE_DIR=str(state),
        LOG_FORMAT="text",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def _fresh_dest(server):
    return server.create_org(unique_org_name("live-dst"))


# --- a minimal terminal: enough of what Rich's live display sends to know what is on screen ----
_CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")


def screen_of(data: str) -> list[str]:
    """The lines left on an unbounded-height terminal after `data` (cursor moves, erases)."""
    lines: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(data):
        ch = data[i]
        if ch == "\x1b":
            match = _CSI.match(data, i)
            if match:
                params, final = match.groups()
                n = int(params) if params.isdigit() else 1
                if final == "A":
                    row = max(row - n, 0)
                elif final == "B":
                    row += n
                elif final == "G":
                    col = n - 1
                elif final == "K":
                    line = lines[row]
                    if params == "2":
                        lines[row] = []
                    else:
                        del line[col:]
                i = match.end()
                continue
            i += 2  # another escape: skip it
            continue
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
            col = 0
        elif ch >= " ":
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            while len(line) < col:
                line.append(" ")
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
        while len(lines) <= row:
            lines.append([])
        i += 1
    out = ["".join(line).rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


def run_in_pty(args: list[str], env: dict[str, str], cols: int = 120, rows: int = 40) -> tuple[int, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**env, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []

    def reader() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has closed it
                return
            if not data:
                return
            chunks.append(data)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    code = proc.wait(timeout=180)
    thread.join(timeout=10)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def _rates(text: str) -> list[float]:
    return [float(m.replace(",", "")) for m in re.findall(r"([\d,]+(?:\.\d+)?) rows/s", text)]


def _mib_rates(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"([\d.]+) MiB/s", text)]


def test_live_display_in_a_terminal_is_one_clean_block_under_the_log_lines(seeded, tmp_path):
    server, source, seeded_result = seeded
    env = _env(server, source, _fresh_dest(server), tmp_path / "state")
    code, raw = run_in_pty([SCRIPT, "migrate"], env)
    assert code == 0, raw[-3000:]
    screen = screen_of(raw)
    text = "\n".join(screen)
    Path(os.environ.get("LIVE_SCREEN_DUMP", os.devnull)).write_text(text)
    # One copy of each stream's label, none of the kind names used as labels twice.
    bars = [line for line in screen if "━" in line]
    for label in LABELS:
        assert sum(line.startswith(label) for line in bars) == 1, (label, text[-4000:])
    assert "project_logs rows" not in text
    # The display is one block at the bottom (its first bar on): every log line sits above it, whole.
    first_bar = min(i for i, line in enumerate(screen) if "━" in line)
    logs = [line for line in screen[:first_bar] if LOG_LINE.match(line)]
    assert any("Starting organization-scoped resource migration" in line for line in logs), text[-4000:]
    assert any("✅ Created" in line for line in logs), text[-4000:]
    for line in screen[first_bar:]:
        assert line and not LOG_LINE.search(line) and "[info" not in line, (line, text[-4000:])
    for line in screen[:first_bar]:
        assert "rows/s" not in line and "━" not in line, line
    # Rates: over a window of at least a second, so never above all rows (or bytes) there are.
    total_rows = seeded_result.event_rows
    for rate in _rates(raw):
        assert rate <= total_rows, (rate, total_rows)
    for mib in _mib_rates(raw):
        assert mib < 1024, mib


def test_without_a_terminal_progress_is_plain_periodic_lines(seeded, tmp_path):
    server, source, _ = seeded
    env = _env(
        server, source, _fresh_dest(server), tmp_path / "state", BRAINTRUST_MIGRATE_PROGRESS_INTERVAL="0.05"
    )
    done = subprocess.run([SCRIPT, "migrate"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not ANSI.search(done.stderr) and not ANSI.search(done.stdout)
    progress = [line for line in done.stderr.splitlines() if line.startswith("progress: ")]
    assert len(progress) >= 2, done.stderr[-3000:]
    pattern = re.compile(
        r"^progress: objects ([\d,]+)/([\d,]+)(, rows ([\d,]+)(/([\d,]+))?( \(([\d,]+) rows/s\))?)?$"
    )
    for line in progress:
        assert pattern.match(line), line
    done_objects, total_objects = pattern.match(progress[-1]).group(1, 2)  # type: ignore[union-attr]
    assert done_objects == total_objects
    assert pattern.match(progress[-1]).group(4), progress[-1]  # type: ignore[union-attr]


def test_piped_output_keeps_the_report_path_on_one_line(seeded, tmp_path):
    server, source, _ = seeded
    state = tmp_path / ("a-long-state-folder-name-" * 4)
    env = _env(server, source, _fresh_dest(server), state, COLUMNS="80")
    done = subprocess.run(
        [SCRIPT, "migrate", "--resources", "ai_secrets,roles"],
        env=env,
        capture_output=True,  # stdout is a pipe, as in CI
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    paths = {}
    for line in done.stdout.splitlines():
        for label in ("report", "summary"):
            if line.startswith(f"{label}: "):
                paths[label] = Path(line[len(label) + 2 :])
    assert paths.keys() == {"report", "summary"}, done.stdout[-2000:]
    assert len(str(paths["report"])) > 80
    assert json.loads(paths["report"].read_text())["run_id"]
    assert paths["summary"].is_file()


def test_help_at_80_columns_shows_full_option_names_defaults_and_choices(tmp_path):
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [SCRIPT, "migrate", "--help"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "…" not in out
    for flag in ("--max-concurrent-resources", "--max-concurrent-requests", "--allow-insecure-http"):
        assert re.search(rf"(^|\s){re.escape(flag)}(\s|$)", out, re.M), flag
    flat = " ".join(out.split())
    assert "Default: 16" in flat  # --max-concurrent-resources
    assert "[DEBUG|INFO|WARNING|ERROR]" in flat
    assert "<str>" not in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_log_lines_read_like_the_brief_and_json_carries_the_facts(seeded, tmp_path):
    server, source, _ = seeded
    dest = _fresh_dest(server)
    src_api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {source.api_key}"})
    dst_api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {dest.api_key}"})
    secrets = src_api.get("/v1/ai_secret").raise_for_status().json()["objects"]
    clash = secrets[0]
    # The destination already holds one secret under that name, of another provider: a conflict.
    other = "anthropic" if clash.get("type") != "anthropic" else "openai"
    dst_api.post("/v1/ai_secret", json={"name": clash["name"], "type": other}).raise_for_status()
    state = tmp_path / "state"
    done = subprocess.run(
        [SCRIPT, "migrate"],
        env=_env(server, source, dest, state),
        capture_output=True,
        text=True,
        timeout=180,
    )
    err = done.stderr
    assert "Starting organization-scoped resource migration" in err
    assert re.search(r"Starting project '.+' \(1/\d+\)", err), err[-3000:]
    created = re.findall(r"✅ Created AI secret: '(.+?)' \((\S+) → (\S+?)[;)]", err)
    assert created, err[-3000:]
    dest_ids = {s["name"]: s["id"] for s in dst_api.get("/v1/ai_secret").raise_for_status().json()["objects"]}
    source_ids = {s["name"]: s["id"] for s in secrets}
    for name, src_id, dst_id in created:
        assert source_ids[name] == src_id and dest_ids[name] == dst_id
    assert re.search(r"⏭️  Skipped role: '.+' \(.+\)", err), err[-3000:]
    assert re.search(rf"⚠️  Conflict on AI secret: '{re.escape(clash['name'])}' \(.+\)", err), err[-3000:]
    assert "Unchanged" not in err
    # Again at DEBUG in JSON: unchanged objects are logged too, with their facts as fields.
    env = _env(server, source, dest, state, LOG_LEVEL="DEBUG", LOG_FORMAT="json")
    again = subprocess.run([SCRIPT, "migrate"], env=env, capture_output=True, text=True, timeout=180)
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), [ln for ln in lines if not ln.startswith("{")][:5]
    records = [json.loads(line) for line in lines]
    assert any(r["event"] == "progress" and r["objects"] == r["objects_total"] for r in records)
    unchanged = [r for r in records if r.get("action") == "unchanged" and r.get("type") == "ai_secret"]
    assert unchanged and all(r["level"] == "debug" for r in unchanged)
    for record in unchanged:
        assert record["source_id"] == source_ids[record["name"]]
        assert record["dest_id"] == dest_ids[record["name"]]
        assert record["event"].startswith("➖ Unchanged AI secret:")
    conflicts = [r for r in records if r.get("action") == "conflict"]
    assert any(r["type"] == "ai_secret" and r["name"] == clash["name"] and r.get("reason") for r in conflicts)


def test_rates_need_a_second_of_window_and_forget_old_samples():
    from braintrust_migrate.engine.progress import Rate

    rate = Rate(100.0)
    rate.add(100.000001, 5000, 5 << 20)  # a first batch microseconds after the start
    assert rate.per_second(100.000002) is None
    rate.add(101.0, 1000, 0)
    assert rate.per_second(101.0) == (6000.0, float(5 << 20))
    rate.add(130.0, 300, 0)  # the window reaches back to the last sample before its 10 s:
    rate.add(131.0, 300, 0)  # the burst at the start is forgotten (else 6600/31 ≈ 213)
    rows_s, _ = rate.per_second(131.0)  # type: ignore[misc]
    assert rows_s == 600 / 30
