"""Attachments: the data plane's ``/attachment`` endpoints and a signed-URL blob store.

The shapes follow what the official SDK sends and expects:

* ``POST /attachment {key, filename, content_type, org_id}`` (API key) registers the
  attachment and answers ``{"signedUrl": <upload URL>, "headers": {...}}``;
* ``PUT <signedUrl>`` (no API key) uploads the bytes with the given headers;
* ``POST /attachment/status {key, org_id, status: {upload_status, error_message?}}``
  (API key) records the outcome (``uploading`` | ``done`` | ``error``);
* ``GET /attachment?key=&filename=&content_type=&org_id=`` (API key) answers
  ``{"downloadUrl": <signed URL>, "status": {...}}`` for a known key (404 otherwise);
  with ``url=`` instead of ``key=`` (an ``external_attachment``) the URL itself comes back;
* ``GET <downloadUrl>`` (no API key) streams the bytes with their content type, once
  the status is ``done`` and bytes were uploaded (404 before).

Blobs live in the sandbox's SQLite database (in memory too), in chunks of
:data:`CHUNK_BYTES`; an upload streams into fresh chunks that replace the old ones
in one transaction when it completes, so a failed or oversized upload leaves the
previous bytes intact. Attachments belong to one org: the ``org_id`` a caller names
must be one of its key's orgs (403 otherwise), keys are per org, and a signed URL is
an HMAC over method + org + key + expiry, so it cannot be used for another blob or
method; a bad or expired signature is 403, as on an object store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from braintrust_migrate.sandbox.core.common import (
    ApiError,
    Ctx,
    Request,
    bad_request,
    forbidden,
    not_found,
    now_iso,
)
from braintrust_migrate.sandbox.core.store import Store

BLOB_PATH = "/attachment/blob"
CHUNK_BYTES = 1024 * 1024
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_URL_TTL_SECONDS = 3600
UPLOAD_STATUSES = ("uploading", "done", "error")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attachments (
    org_id        TEXT NOT NULL,
    key           TEXT NOT NULL,
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    upload_status TEXT NOT NULL,
    error_message TEXT,
    upload_id     INTEGER,
    size          INTEGER,
    etag          TEXT,
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL,
    PRIMARY KEY (org_id, key)
);
CREATE TABLE IF NOT EXISTS attachment_uploads (
    upload_id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    complete  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS attachment_chunks (
    upload_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
"""


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


class AttachmentService:
    """The blob store and the handlers; ``max_bytes`` and ``url_ttl_seconds`` may be changed live."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.store: Store = state.store
        self.max_bytes = DEFAULT_MAX_BYTES
        self.url_ttl_seconds = DEFAULT_URL_TTL_SECONDS
        self._secret = secrets.token_bytes(32)
        self.store.add_schema(_SCHEMA)
        with self.store.transaction() as tx:  # uploads cut short by a previous process
            tx.execute(
                "DELETE FROM attachment_chunks WHERE upload_id IN "
                "(SELECT upload_id FROM attachment_uploads WHERE complete = 0)"
            )
            tx.execute("DELETE FROM attachment_uploads WHERE complete = 0")

    # --- signed URLs ------------------------------------------------------------------------

    def _signature(self, method: str, org_id: str, key: str, expires: int) -> str:
        message = f"{method}\n{org_id}\n{key}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def signed_url(self, base_url: str, method: str, org_id: str, key: str) -> str:
        expires = int(time.time()) + int(self.url_ttl_seconds)
        query = urllib.parse.urlencode(
            {
                "org_id": org_id,
                "key": key,
                "expires": expires,
                "signature": self._signature(method, org_id, key, expires),
            }
        )
        return f"{base_url.rstrip('/')}{BLOB_PATH}?{query}"

    def _verify(self, request: HttpRequest, method: str) -> tuple[str, str]:
        q = request.query_params
        org_id, key, expires, signature = q.get("org_id"), q.get("key"), q.get("expires"), q.get("signature")
        if not (org_id and key and expires and signature) or not expires.isdigit():
            raise ApiError(403, "Missing or malformed signed URL parameters")
        expected = self._signature(method, org_id, key, int(expires))
        if not hmac.compare_digest(expected, signature):
            raise ApiError(403, "Signature does not match (wrong URL, blob or HTTP method)")
        if int(expires) < time.time():
            raise ApiError(403, "Signed URL has expired")
        return org_id, key

    # --- API-key endpoints (run through SandboxState.dispatch: auth, transaction, errors) ---

    @staticmethod
    def _org(ctx: Ctx, given: Any) -> str:
        if given in (None, ""):
            if len(ctx.caller.org_ids) == 1:
                return ctx.caller.org_ids[0]
            raise bad_request("org_id is required: this API key belongs to several organizations")
        if not isinstance(given, str):
            raise bad_request("org_id must be a string")
        if given not in ctx.caller.org_ids:
            raise forbidden(f"This API key cannot access attachments of organization {given}")
        return given

    @staticmethod
    def _body(ctx: Ctx) -> dict[str, Any]:
        raw = ctx.req.raw_body.strip()
        try:
            value = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"Malformed JSON body: {exc}") from None
        if not isinstance(value, dict):
            raise bad_request("Invalid request body: expected a JSON object")
        return value

    @staticmethod
    def _string(body: dict[str, Any], name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise bad_request(f"{name} is required (a non-empty string)")
        return value

    def request_upload(self, ctx: Ctx, base_url: str) -> dict[str, Any]:
        body = self._body(ctx)
        key = self._string(body, "key")
        filename = self._string(body, "filename")
        content_type = self._string(body, "content_type")
        org_id = self._org(ctx, body.get("org_id"))
        now = now_iso()
        ctx.tx.execute(
            "INSERT INTO attachments (org_id, key, filename, content_type, upload_status, created, updated) "
            "VALUES (?, ?, ?, ?, 'uploading', ?, ?) ON CONFLICT (org_id, key) DO UPDATE SET "
            "filename = excluded.filename, content_type = excluded.content_type, updated = excluded.updated",
            (org_id, key, filename, content_type, now, now),
        )
        return {
            "signedUrl": self.signed_url(base_url, "PUT", org_id, key),
            "headers": {"Content-Type": content_type},
        }

    def set_status(self, ctx: Ctx) -> dict[str, Any]:
        body = self._body(ctx)
        key = self._string(body, "key")
        org_id = self._org(ctx, body.get("org_id"))
        status = body.get("status")
        if not isinstance(status, dict) or status.get("upload_status") not in UPLOAD_STATUSES:
            raise bad_request(
                "status must be {upload_status: 'uploading' | 'done' | 'error', error_message?}"
            )
        message = status.get("error_message")
        if message is not None and not isinstance(message, str):
            raise bad_request("status.error_message must be a string")
        now = now_iso()
        ctx.tx.execute(
            "INSERT INTO attachments (org_id, key, filename, content_type, upload_status, error_message, "
            "created, updated) VALUES (?, ?, '', 'application/octet-stream', ?, ?, ?, ?) "
            "ON CONFLICT (org_id, key) DO UPDATE SET upload_status = excluded.upload_status, "
            "error_message = excluded.error_message, updated = excluded.updated",
            (org_id, key, status["upload_status"], message, now, now),
        )
        return {"key": key, "org_id": org_id, "status": _status(status["upload_status"], message)}

    def metadata(self, ctx: Ctx, base_url: str) -> dict[str, Any]:
        query = dict(ctx.req.query)
        org_id = self._org(ctx, query.get("org_id"))
        url = query.get("url")
        if url and not query.get("key"):
            return {"downloadUrl": url, "status": _status("done", None)}
        key = query.get("key")
        if not key:
            raise bad_request("key (or url, for an external attachment) is required")
        record = ctx.tx.execute(
            "SELECT upload_status, error_message FROM attachments WHERE org_id = ? AND key = ?", (org_id, key)
        ).fetchone()
        if record is None:
            raise not_found(f"No attachment with key {key!r}")
        return {"downloadUrl": self.signed_url(base_url, "GET", org_id, key), "status": _status(*record)}

    # --- signed-URL endpoints (no API key) --------------------------------------------------

    async def upload(self, request: HttpRequest) -> Response:
        try:
            org_id, key = self._verify(request, "PUT")
        except ApiError as exc:
            await _drain(request)
            return _error(exc.status, exc.message)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(request)
            return _error(413, f"Attachment too large: {declared} bytes, the limit is {self.max_bytes}")
        upload_id = await run_in_threadpool(self._start_upload, org_id, key)
        if upload_id is None:
            await _drain(request)
            return _error(404, f"No attachment with key {key!r} (request an upload URL first)")
        digest = hashlib.md5(usedforsecurity=False)
        buffer = bytearray()
        size = seq = 0
        too_large = False
        try:
            async for piece in request.stream():
                if too_large:
                    continue  # read the rest (discarded), so the client sees the 413
                size += len(piece)
                if size > self.max_bytes:
                    too_large = True
                    await run_in_threadpool(self._abort_upload, upload_id)
                    continue
                digest.update(piece)
                buffer += piece
                while len(buffer) >= CHUNK_BYTES:
                    await run_in_threadpool(self._write_chunk, upload_id, seq, bytes(buffer[:CHUNK_BYTES]))
                    del buffer[:CHUNK_BYTES]
                    seq += 1
            if buffer and not too_large:
                await run_in_threadpool(self._write_chunk, upload_id, seq, bytes(buffer))
        except ClientDisconnect:
            await run_in_threadpool(self._abort_upload, upload_id)
            return Response(status_code=400)
        except BaseException:
            await run_in_threadpool(self._abort_upload, upload_id)
            raise
        if too_large:
            return _error(413, f"Attachment too large: more than {self.max_bytes} bytes")
        etag = f'"{digest.hexdigest()}"'
        await run_in_threadpool(self._finish_upload, org_id, key, upload_id, size, etag)
        return Response(status_code=200, headers={"ETag": etag})

    async def download(self, request: HttpRequest) -> Response:
        try:
            org_id, key = self._verify(request, "GET")
        except ApiError as exc:
            return _error(exc.status, exc.message)
        record = await run_in_threadpool(self._blob, org_id, key)
        if record is None:
            return _error(404, f"No uploaded attachment with key {key!r}")
        upload_id, size, filename, content_type, etag = record
        headers = {"Content-Length": str(size)}
        if etag:
            headers["ETag"] = etag
        if filename:
            headers["Content-Disposition"] = "attachment; filename*=UTF-8''" + urllib.parse.quote(filename)
        return StreamingResponse(self._chunks(upload_id), media_type=content_type, headers=headers)

    # --- storage ----------------------------------------------------------------------------

    def _start_upload(self, org_id: str, key: str) -> int | None:
        with self.store.transaction() as tx:
            known = tx.execute(
                "SELECT 1 FROM attachments WHERE org_id = ? AND key = ?", (org_id, key)
            ).fetchone()
            if known is None:
                return None
            cur = tx.execute("INSERT INTO attachment_uploads (org_id, key) VALUES (?, ?)", (org_id, key))
            return int(cur.lastrowid or 0)

    def _write_chunk(self, upload_id: int, seq: int, data: bytes) -> None:
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO attachment_chunks (upload_id, seq, data) VALUES (?, ?, ?)",
                (upload_id, seq, data),
            )

    def _abort_upload(self, upload_id: int) -> None:
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM attachment_chunks WHERE upload_id = ?", (upload_id,))
            tx.execute("DELETE FROM attachment_uploads WHERE upload_id = ?", (upload_id,))

    def _finish_upload(self, org_id: str, key: str, upload_id: int, size: int, etag: str) -> None:
        with self.store.transaction() as tx:
            old = tx.execute(
                "SELECT upload_id FROM attachments WHERE org_id = ? AND key = ?", (org_id, key)
            ).fetchone()
            tx.execute(
                "UPDATE attachments SET upload_id = ?, size = ?, etag = ?, updated = ? WHERE org_id = ? AND key = ?",
                (upload_id, size, etag, now_iso(), org_id, key),
            )
            tx.execute("UPDATE attachment_uploads SET complete = 1 WHERE upload_id = ?", (upload_id,))
            if old is not None and old[0] is not None and old[0] != upload_id:
                tx.execute("DELETE FROM attachment_chunks WHERE upload_id = ?", (old[0],))
                tx.execute("DELETE FROM attachment_uploads WHERE upload_id = ?", (old[0],))

    def _blob(self, org_id: str, key: str) -> tuple[int, int, str, str, str | None] | None:
        with self.store.transaction() as tx:
            record = tx.execute(
                "SELECT upload_id, size, filename, content_type, etag FROM attachments "
                "WHERE org_id = ? AND key = ? AND upload_status = 'done' AND upload_id IS NOT NULL",
                (org_id, key),
            ).fetchone()
        return tuple(record) if record else None

    def _chunks(self, upload_id: int) -> Iterator[bytes]:
        seq = 0
        while True:
            with self.store.transaction() as tx:
                record = tx.execute(
                    "SELECT data FROM attachment_chunks WHERE upload_id = ? AND seq = ?", (upload_id, seq)
                ).fetchone()
                more = (
                    record is None
                    and tx.execute(
                        "SELECT 1 FROM attachment_uploads WHERE upload_id = ? AND complete = 1", (upload_id,)
                    ).fetchone()
                    is None
                )
            if record is None:
                if more:  # replaced by a newer upload while streaming: cut the response short
                    raise RuntimeError("attachment was overwritten during the download")
                return
            yield bytes(record[0])
            seq += 1

    # --- routes -----------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        state = self.state

        def api(handler: Any, *, with_base: bool) -> Any:
            async def endpoint(request: HttpRequest) -> Response:
                req = await Request.read(request, request.url.path, request.method, path_params={})
                base = str(request.base_url)
                fn = (lambda ctx: handler(ctx, base)) if with_base else handler
                return await run_in_threadpool(state.dispatch, fn, req)

            return endpoint

        return [
            Route("/attachment", api(self.request_upload, with_base=True), methods=["POST"]),
            Route("/attachment", api(self.metadata, with_base=True), methods=["GET"]),
            Route("/attachment/status", api(self.set_status, with_base=False), methods=["POST"]),
            Route(BLOB_PATH, self.upload, methods=["PUT"]),
            Route(BLOB_PATH, self.download, methods=["GET"]),
        ]


def _status(upload_status: str, error_message: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"upload_status": upload_status}
    if error_message is not None:
        out["error_message"] = error_message
    return out


async def _drain(request: HttpRequest) -> None:
    """Read what is left of the body, so the client sees the answer rather than a reset."""
    try:
        async for _ in request.stream():
            pass
    except (ClientDisconnect, RuntimeError):
        pass


def install(state: Any) -> AttachmentService:
    service = AttachmentService(state)
    state.settings["attachments"] = service
    return service


def service_of(app: Any) -> AttachmentService:
    """The :class:`AttachmentService` of a sandbox app (``create_app``'s result)."""
    return app.state.sandbox.settings["attachments"]
