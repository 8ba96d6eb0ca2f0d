"""Names carrying terminal control sequences are shown escaped in text output (issue case 5)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import structlog
from rich.console import Console

from braintrust_migrate.logs import configure_logging
from braintrust_migrate.textsafe import markup_safe, printable

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))

CLEAR = "p\x1b[2Jx"
LINK = "l\x1b]8;;http://x\x07link\x1b]8;;\x07"
TITLE = "t\x1b]0;pwned\x07"
CSI = "c\x9bq"
BIDI = "b\u202eZ"
HOSTILE = (CLEAR, LINK, TITLE, CSI, BIDI)
# What no text line may contain raw: C0 (newline aside), DEL, C1, bidi controls.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (CLEAR, "p\\x1b[2Jx"),
        (LINK, "l\\x1b]8;;http://x\\x07link\\x1b]8;;\\x07"),
        (TITLE, "t\\x1b]0;pwned\\x07"),
        (CSI, "c\\x9bq"),
        (BIDI, "b\\u202eZ"),
        ("a\nb\rc\x00\x7f", "a\\x0ab\\x0dc\\x00\\x7f"),
        ("Ünïcödé 中文 🔐 Azure / EU “prod” key", "Ünïcödé 中文 🔐 Azure / EU “prod” key"),
    ],
)
def test_printable_escapes_controls_and_keeps_unicode(text, shown):
    assert printable(text) == shown


def test_printable_keeps_lines_when_asked():
    assert printable("line 1\n\tline 2\x1b[2J", keep_lines=True) == "line 1\n\tline 2\\x1b[2J"


def test_markup_safe_is_shown_literally_by_rich():
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", highlight=False).print(
        markup_safe("[link=http://evil.example]click[/link] " + LINK)
    )
    text = out.getvalue()
    assert "\x1b]" not in text  # no OSC sequence (an 8 link) made, from markup or raw
    assert "[link=http://evil.example]click[/link]" in text


def _log_text(fmt: str) -> str:
    stream = io.StringIO()
    configure_logging("INFO", fmt, stream)
    log = structlog.get_logger("textsafe-test")
    for name in HOSTILE:
        log.info(f"created project {name}", name=name, plain=name.replace(" ", ""))
    return stream.getvalue()


def test_text_log_lines_escape_names():
    text = _log_text("text")
    assert not RAW.search(text), repr(text)
    for name in HOSTILE:
        assert printable(name) in text
    assert len(text.splitlines()) == len(HOSTILE)


def test_json_log_lines_keep_names_exactly():
    lines = _log_text("json").splitlines()
    assert [json.loads(line)["name"] for line in lines] == list(HOSTILE)
    assert [json.loads(line)["event"] for line in lines] == [f"created project {n}" for n in HOSTILE]


@pytest.fixture
def hostile_source(sandbox_server, sandbox_orgs):
    url, src = sandbox_server.url, sandbox_orgs.source
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {src.api_key}"}, timeout=30) as c:
        for name in HOSTILE:
            c.post("/v1/project", json={"name": name}).raise_for_status()
        # No value in a secrets file: skipped, so the name is listed in the summary too.
        c.post("/v1/ai_secret", json={"name": "K" + TITLE, "type": "openai"}).raise_for_status()
    return sandbox_server, sandbox_orgs


def _migrate(server, orgs, state: Path, fmt: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "BT_SOURCE_URL": server.url,
        "BT_DEST_URL": server.url,
        "BT_SOURCE_API_KEY": orgs.source.api_key,
        "BT_DEST_API_KEY": orgs.dest.api_key,
        "MIGRATION_STATE_DIR": str(state),
        "LOG_FORMAT": fmt,
    }
    return subprocess.run([SCRIPT, "migrate"], env=env, capture_output=True, text=True, timeout=120)


def test_cli_text_logs_escape_names(hostile_source, tmp_path):
    server, orgs = hostile_source
    done = _migrate(server, orgs, tmp_path, "text")
    assert "created" in done.stderr.lower(), done.stderr[-2000:]
    assert not RAW.search(done.stderr), [line for line in done.stderr.splitlines() if RAW.search(line)]
    for name in HOSTILE:
        assert printable(name) in done.stderr


def test_cli_json_logs_keep_names(hostile_source, tmp_path):
    server, orgs = hostile_source
    done = _migrate(server, orgs, tmp_path, "json")
    names = {json.loads(line).get("name") for line in done.stderr.splitlines() if line.startswith("{")}
    assert set(HOSTILE) <= names


def test_cli_summary_escapes_names(hostile_source, tmp_path):
    server, orgs = hostile_source
    done = _migrate(server, orgs, tmp_path, "text")
    assert printable("K" + TITLE) in done.stdout, done.stdout
    assert not RAW.search(done.stdout), done.stdout
