"""Attachments over real HTTP: register, upload to a signed URL, status, download, isolation."""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from braintrust_migrate.sandbox.events import attachments
from braintrust_migrate.sandbox.faults import FaultSettings
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.sandbox.server import SandboxServer


def _client(server: SandboxServer, org: SandboxOrg) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {org.api_key}"}, timeout=30)


@pytest.fixture
def api(sandbox_server: SandboxServer, sandbox_org: SandboxOrg) -> Iterator[httpx.Client]:
    with _client(sandbox_server, sandbox_org) as c:
        yield c


@pytest.fixture
def service(sandbox_server: SandboxServer) -> Iterator[attachments.AttachmentService]:
    svc = attachments.service_of(sandbox_server.app)
    saved = (svc.max_bytes, svc.url_ttl_seconds)
    yield svc
    svc.max_bytes, svc.url_ttl_seconds = saved


def _register(api: httpx.Client, org: SandboxOrg, key: str, **extra: Any) -> dict[str, Any]:
    body = {"key": key, "filename": "a.bin", "content_type": "application/octet-stream", "org_id": org.id}
    response = api.post("/attachment", json={**body, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _set_status(api: httpx.Client, org: SandboxOrg, key: str, status: str, **extra: Any) -> httpx.Response:
    return api.post(
        "/attachment/status",
        json={"key": key, "org_id": org.id, "status": {"upload_status": status, **extra}},
    )


def _metadata(api: httpx.Client, org: SandboxOrg, key: str) -> httpx.Response:
    params = {"key": key, "filename": "a.bin", "content_type": "application/octet-stream", "org_id": org.id}
    return api.get("/attachment", params=params)


def _upload(
    api: httpx.Client, org: SandboxOrg, key: str, data: bytes | Iterator[bytes], **extra: Any
) -> None:
    upload = _register(api, org, key, **extra)
    put = httpx.put(upload["signedUrl"], content=data, headers=upload["headers"])  # no API key
    assert put.status_code == 200, put.text
    assert _set_status(api, org, key, "done").status_code == 200


def test_round_trip_is_byte_identical(api: httpx.Client, sandbox_org: SandboxOrg) -> None:
    data = os.urandom(10_000)
    upload = _register(api, sandbox_org, "k-small", filename="pic.png", content_type="image/png")
    assert set(upload) == {"signedUrl", "headers"} and upload["headers"] == {"Content-Type": "image/png"}
    assert "Authorization" not in upload["signedUrl"]
    assert httpx.put(upload["signedUrl"], content=data, headers=upload["headers"]).status_code == 200
    assert _set_status(api, sandbox_org, "k-small", "done").json()["status"] == {"upload_status": "done"}

    meta = _metadata(api, sandbox_org, "k-small")
    assert meta.status_code == 200
    assert meta.json()["status"] == {"upload_status": "done"}
    download = httpx.get(meta.json()["downloadUrl"])  # no API key
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-type"] == "image/png"
    assert "pic.png" in download.headers["content-disposition"]


def test_multi_mib_blob_streams_both_ways(api: httpx.Client, sandbox_org: SandboxOrg) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)

    def pieces() -> Iterator[bytes]:  # chunked upload, no Content-Length
        for i in range(0, len(data), 256 * 1024):
            yield data[i : i + 256 * 1024]

    _upload(api, sandbox_org, "k-big", pieces())
    url = _metadata(api, sandbox_org, "k-big").json()["downloadUrl"]
    digest, size, reads = hashlib.sha256(), 0, 0
    with httpx.stream("GET", url) as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(data)
        for chunk in response.iter_raw():
            digest.update(chunk)
            size += len(chunk)
            reads += 1
    assert size == len(data) and digest.digest() == hashlib.sha256(data).digest()
    assert reads > 1


def test_reupload_replaces_the_bytes(api: httpx.Client, sandbox_org: SandboxOrg) -> None:
    _upload(api, sandbox_org, "k-again", b"first version")
    _upload(api, sandbox_org, "k-again", b"second")
    url = _metadata(api, sandbox_org, "k-again").json()["downloadUrl"]
    assert httpx.get(url).content == b"second"


def test_status_before_done_and_errors(api: httpx.Client, sandbox_org: SandboxOrg) -> None:
    upload = _register(api, sandbox_org, "k-pending")
    meta = _metadata(api, sandbox_org, "k-pending").json()
    assert meta["status"] == {"upload_status": "uploading"}
    assert httpx.get(meta["downloadUrl"]).status_code == 404  # nothing to serve until done
    assert httpx.put(upload["signedUrl"], content=b"abc").status_code == 200
    assert httpx.get(meta["downloadUrl"]).status_code == 404  # uploaded, status not done yet

    # The SDK reports failures (even for keys it never registered) with an error message.
    failed = _set_status(api, sandbox_org, "k-failed", "error", error_message="disk on fire")
    assert failed.status_code == 200
    assert _metadata(api, sandbox_org, "k-failed").json()["status"] == {
        "upload_status": "error",
        "error_message": "disk on fire",
    }
    assert _set_status(api, sandbox_org, "k-pending", "finished").status_code == 400


def test_unknown_key_is_404_and_auth_is_required(
    sandbox_server: SandboxServer, api: httpx.Client, sandbox_org: SandboxOrg
) -> None:
    assert _metadata(api, sandbox_org, "no-such-key").status_code == 404
    anonymous = httpx.post(sandbox_server.url + "/attachment", json={"key": "k", "org_id": sandbox_org.id})
    assert anonymous.status_code == 401
    assert api.post("/attachment", json={"key": "k", "org_id": sandbox_org.id}).status_code == 400


def test_external_attachment_url_passes_through(api: httpx.Client, sandbox_org: SandboxOrg) -> None:
    params = {"url": "https://example.com/x.txt", "filename": "x.txt", "content_type": "text/plain"}
    response = api.get("/attachment", params={**params, "org_id": sandbox_org.id})
    assert response.json() == {
        "downloadUrl": "https://example.com/x.txt",
        "status": {"upload_status": "done"},
    }


def test_another_org_cannot_read_or_overwrite(sandbox_server: SandboxServer, sandbox_orgs: Any) -> None:
    source, dest = sandbox_orgs.source, sandbox_orgs.dest
    with _client(sandbox_server, source) as src, _client(sandbox_server, dest) as dst:
        _upload(src, source, "shared-key", b"source bytes")
        # Naming the other org is forbidden, for reads, registrations and statuses.
        assert _metadata(dst, source, "shared-key").status_code == 403
        body = {"key": "shared-key", "filename": "f", "content_type": "text/plain", "org_id": source.id}
        assert dst.post("/attachment", json=body).status_code == 403
        assert _set_status(dst, source, "shared-key", "error").status_code == 403
        # In its own org the same key is another blob.
        assert _metadata(dst, dest, "shared-key").status_code == 404
        _upload(dst, dest, "shared-key", b"dest bytes")
        assert httpx.get(_metadata(dst, dest, "shared-key").json()["downloadUrl"]).content == b"dest bytes"
        assert (
            httpx.get(_metadata(src, source, "shared-key").json()["downloadUrl"]).content == b"source bytes"
        )
        # With no org_id, a single-org key means its own org.
        no_org = dst.get("/attachment", params={"key": "shared-key"})
        assert httpx.get(no_org.json()["downloadUrl"]).content == b"dest bytes"


def _tamper(url: str, **changes: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(changes)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def test_bad_wrong_method_and_expired_signatures_are_403(
    api: httpx.Client, sandbox_org: SandboxOrg, sandbox_orgs: Any, service: attachments.AttachmentService
) -> None:
    _upload(api, sandbox_org, "k-signed", b"secret bytes")
    url = _metadata(api, sandbox_org, "k-signed").json()["downloadUrl"]
    assert httpx.get(url).status_code == 200
    assert httpx.get(_tamper(url, signature="0" * 64)).status_code == 403
    assert httpx.get(_tamper(url, key="k-other")).status_code == 403
    assert httpx.get(_tamper(url, org_id=sandbox_orgs.dest.id)).status_code == 403
    assert httpx.get(_tamper(url, expires="9999999999")).status_code == 403
    assert httpx.get(url.split("?")[0]).status_code == 403
    # A download URL cannot upload (the method is signed), and an upload URL cannot download.
    assert httpx.put(url, content=b"overwrite!").status_code == 403
    upload_url = _register(api, sandbox_org, "k-signed")["signedUrl"]
    assert httpx.get(upload_url).status_code == 403
    assert httpx.get(url).content == b"secret bytes"

    service.url_ttl_seconds = -5
    expired = _metadata(api, sandbox_org, "k-signed").json()["downloadUrl"]
    response = httpx.get(expired)
    assert response.status_code == 403 and "expired" in response.json()["error"]


def test_max_size_is_enforced_and_keeps_the_old_bytes(
    api: httpx.Client, sandbox_org: SandboxOrg, service: attachments.AttachmentService
) -> None:
    _upload(api, sandbox_org, "k-limit", b"small and fine")
    service.max_bytes = 100_000
    upload = _register(api, sandbox_org, "k-limit")
    too_big = os.urandom(250_000)
    assert httpx.put(upload["signedUrl"], content=too_big).status_code == 413  # by Content-Length
    streamed = httpx.put(upload["signedUrl"], content=iter([too_big[:60_000], too_big[60_000:]]))
    assert streamed.status_code == 413  # by the streamed size
    url = _metadata(api, sandbox_org, "k-limit").json()["downloadUrl"]
    assert httpx.get(url).content == b"small and fine"


def test_blob_transfers_are_not_subject_to_the_api_request_size(
    sandbox_server: SandboxServer, api: httpx.Client, sandbox_org: SandboxOrg
) -> None:
    sandbox_server.set_faults(FaultSettings(max_request_bytes=1000), org=sandbox_org.name)
    try:
        data = os.urandom(50_000)
        _upload(api, sandbox_org, "k-fault", data)
        assert httpx.get(_metadata(api, sandbox_org, "k-fault").json()["downloadUrl"]).content == data
        too_big = {"key": "k", "filename": "f" * 2000, "content_type": "text/plain", "org_id": sandbox_org.id}
        assert api.post("/attachment", json=too_big).status_code == 413
    finally:
        sandbox_server.set_faults(None, org=sandbox_org.name)


def test_signed_urls_get_the_org_faults(
    sandbox_server: SandboxServer, api: httpx.Client, sandbox_org: SandboxOrg
) -> None:
    _upload(api, sandbox_org, "k-flaky", b"bytes")
    url = _metadata(api, sandbox_org, "k-flaky").json()["downloadUrl"]
    sandbox_server.set_faults(
        FaultSettings(error_rate=1, include_paths=(attachments.BLOB_PATH,)), org=sandbox_org.name
    )
    try:
        assert httpx.get(url).status_code >= 500
        assert _metadata(api, sandbox_org, "k-flaky").status_code == 200
    finally:
        sandbox_server.set_faults(None, org=sandbox_org.name)
    assert httpx.get(url).content == b"bytes"
