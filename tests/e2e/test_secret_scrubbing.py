"""Secret values from --secrets-file never reach any output, even when the destination
answers with an error that quotes the request body we sent (issue case 1).

The destination here is a sandbox whose secret endpoints echo the request body in a 400,
as JSON (ai_secret) and as plain text (env_var). The CLI runs as a subprocess, with text
and JSON logs at DEBUG; stdout, stderr and every byte under the state dir are searched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from braintrust_migrate.redact import MASK, register_value, scrub
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))

LONG = "sv-SECRET-123456"
SPECIAL = 'p@ss"w\\ord-Ä-Zq987654'  # quotes, a backslash, non-ASCII: JSON escapes it
SHORT = "q7z"  # under MIN_SUBSTRING: scrubbed where it stands as a whole JSON string
ECHOED = {"/v1/ai_secret": "json", "/v1/env_var": "text"}


class EchoBodies:
    """ASGI middleware: a destination key's POST to a secret endpoint gets a 400 quoting its body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.dest_keys: set[str] = set()
        self.echoed = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
        style = ECHOED.get(scope.get("path", "")) if scope["type"] == "http" else None
        if style is None or scope["method"] != "POST" or token not in self.dest_keys:
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.echoed += 1
        text = f"Invalid request body: {body.decode()}"
        if style == "json":
            answer, kind = orjson.dumps({"error": text}), b"application/json"
        else:
            answer, kind = text.encode(), b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def echo_server() -> Iterator[tuple[SandboxServer, EchoBodies]]:
    server = SandboxServer()
    echo = EchoBodies(server.app)
    server.app = echo
    with server:
        yield server, echo


def _source_with_secrets(url: str, org: SandboxOrg) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=30) as c:
        for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
            body = {"name": name, "type": "openai", "secret": f"sk-source-{uuid.uuid4().hex}"}
            c.post("/v1/ai_secret", json=body).raise_for_status()
        for name in ("SHARED_TOKEN", "SHORT_TOKEN"):
            body = {"object_type": "organization", "object_id": org.id, "name": name, "value": "x" * 12}
            c.post("/v1/env_var", json=body).raise_for_status()


def _forms(value: str) -> set[bytes]:
    """How a value may look in a file or a stream: raw, JSON-escaped (once, twice), URL-encoded."""
    once = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    twice = {json.dumps(form)[1:-1] for form in once} | {
        json.dumps(f, ensure_ascii=False)[1:-1] for f in once
    }
    return {form.encode() for form in {value, quote(value, safe=""), *once, *twice}}


def _leaks(blob: bytes) -> list[str]:
    found = [f"{form!r}" for value in (LONG, SPECIAL) for form in _forms(value) if form in blob]
    found += [frag for frag in ("SECRET-123456", "Zq987654") if frag.encode() in blob]
    found += [q for q in ('"q7z"', '\\"q7z\\"') if q.encode() in blob]
    return found


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secret_values_absent_from_every_output(echo_server, tmp_path, log_format):
    server, echo = echo_server
    source = server.create_org(f"source-{uuid.uuid4().hex[:8]}")
    dest = server.create_org(f"dest-{uuid.uuid4().hex[:8]}")
    echo.dest_keys.add(dest.api_key)
    _source_with_secrets(server.url, source)
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        "ai_secrets:\n"
        f"  OPENAI_API_KEY: {LONG}\n"
        f"  ANTHROPIC_API_KEY: {json.dumps(SPECIAL)}\n"
        "env_vars:\n"
        f"  SHARED_TOKEN: {LONG}\n"
        f"  SHORT_TOKEN: {SHORT}\n",
        encoding="utf-8",
    )
    state = tmp_path / "state"
    env = {
        **os.environ,
        "BT_SOURCE_URL": server.url,
        "BT_DEST_URL": server.url,
        "BT_SOURCE_API_KEY": source.api_key,
        "BT_DEST_API_KEY": dest.api_key,
        "MIGRATION_STATE_DIR": str(state),
        "MIGRATION_RETRY_ATTEMPTS": "0",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": log_format,
    }
    before = echo.echoed
    done = subprocess.run(
        [SCRIPT, "migrate", "--secrets-file", str(secrets)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    # The destination did quote our bodies back: four secret objects, four echoes.
    assert echo.echoed - before == 4, done.stderr.decode()[-3000:]
    assert done.returncode == 1, done.stderr.decode()[-3000:]
    assert b"Invalid request body" in done.stdout + done.stderr  # the echoes were shown, scrubbed

    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "state.db" for p in files), files
    assert any(p.name == "migration_report.json" for p in files), files
    assert any(p.name == "migration_summary.txt" for p in files), files
    outputs = {"stdout": done.stdout, "stderr": done.stderr} | {str(p): p.read_bytes() for p in files}
    leaked = {name: found for name, blob in outputs.items() if (found := _leaks(blob))}
    assert leaked == {}


def test_short_and_escaped_values_are_scrubbed():
    register_value("zz9")
    register_value('a"b\\c-Ünïcode-777')
    assert scrub('{"value": "zz9"}') == f'{{"value": "{MASK}"}}'
    assert (
        scrub('{"error": "body {\\"value\\":\\"zz9\\"}"}')
        == f'{{"error": "body {{\\"value\\":\\"{MASK}\\"}}"}}'
    )
    # A short value is not removed from inside ordinary words (no false positives there).
    assert scrub("buzz9 fizz") == "buzz9 fizz"
    echoed = json.dumps({"error": json.dumps({"secret": 'a"b\\c-Ünïcode-777'})})
    assert "777" not in scrub(echoed)
    assert "777" not in scrub(json.dumps({"secret": 'a"b\\c-Ünïcode-777'}, ensure_ascii=False))
