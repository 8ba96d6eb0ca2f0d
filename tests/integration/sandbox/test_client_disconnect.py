"""A client that hangs up mid-body (a killed migration) is no server error: nothing is logged as
an exception and the sandbox keeps serving."""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlparse

import httpx


def test_a_body_cut_short_is_not_logged_as_an_error(sandbox_server, sandbox_org, caplog):
    caplog.set_level(logging.ERROR)
    url = urlparse(sandbox_server.url)
    with socket.create_connection((url.hostname, url.port)) as raw:
        raw.sendall(
            b"POST /v1/project HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + sandbox_org.api_key.encode() + b"\r\n"
            b'Content-Length: 1000\r\n\r\n{"name": "cut'
        )
    time.sleep(0.3)  # the server notices the hang-up on its own loop

    assert [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()] == []
    answer = httpx.get(
        f"{sandbox_server.url}/v1/project", headers={"Authorization": f"Bearer {sandbox_org.api_key}"}
    )
    assert answer.status_code == 200
    assert [p["name"] for p in answer.json()["objects"]] == []
