"""Stream options: attachments copied byte for byte, the created-time window, and the
/fetch fallback for a data plane without BTQL."""

from __future__ import annotations

import os

import httpx

from braintrust_migrate.client import ApiClient
from braintrust_migrate.sandbox.events.attachments import BLOB_PATH
from braintrust_migrate.sandbox.faults import FaultSettings
from braintrust_migrate.sandbox.objects.admin import SandboxOrg
from braintrust_migrate.source.reader import FetchReader, Window
from tests.integration.engine.harness import migrate
from tests.integration.events.helpers import all_rows, client, insert


def upload(url: str, org: SandboxOrg, key: str, data: bytes, content_type: str = "image/png") -> dict:
    with client(url, org) as c:
        body = {"key": key, "filename": "pic.png", "content_type": content_type, "org_id": org.id}
        signed = c.post("/attachment", json=body).raise_for_status().json()
        httpx.put(signed["signedUrl"], content=data, headers=signed.get("headers") or {}).raise_for_status()
        c.post("/attachment/status", json={"key": key, "org_id": org.id, "status": {"upload_status": "done"}})
    return {"type": "braintrust_attachment", "key": key, "filename": "pic.png", "content_type": content_type}


def download(url: str, org: SandboxOrg, ref: dict) -> bytes:
    with client(url, org) as c:
        params = {k: ref[k] for k in ("key", "filename", "content_type")} | {"org_id": org.id}
        location = c.get("/attachment", params=params).raise_for_status().json()["downloadUrl"]
    return httpx.get(location).raise_for_status().content


def project_with_logs(url: str, org: SandboxOrg, rows: list[dict]) -> str:
    with client(url, org) as c:
        project = c.post("/v1/project", json={"name": "Attach"}).json()
    insert(url, org, "project_logs", project["id"], rows)
    return project["id"]


def dest_project(url: str, org: SandboxOrg) -> str:
    with client(url, org) as c:
        return c.get("/v1/project", params={"project_name": "Attach"}).json()["objects"][0]["id"]


async def test_copy_attachments_byte_identical_once_per_key(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    blob = os.urandom(3 * 1024 * 1024 + 17)
    ref = upload(url, src, "blob-1", blob)
    external = {
        "type": "external_attachment",
        "url": "https://example.com/a.pdf",
        "filename": "a.pdf",
        "content_type": "application/pdf",
    }
    rows = [{"id": "a", "input": {"image": ref, "doc": external}}, {"id": "b", "output": [ref]}]
    project_with_logs(url, src, rows)
    result = await migrate(url, src, dst, tmp_path, migration_copy_attachments=True)
    assert result.ok, result.summary_path.read_text()
    copied = all_rows(url, dst, "project_logs", dest_project(url, dst))
    new_ref = copied["a"]["input"]["image"]
    assert copied["b"]["output"][0]["key"] == new_ref["key"]  # one copy per key
    assert copied["a"]["input"]["doc"] == external
    assert download(url, dst, new_ref) == blob

    again = await migrate(url, src, dst, tmp_path, migration_copy_attachments=True, fresh=True)
    assert (
        all_rows(url, dst, "project_logs", dest_project(url, dst))["a"]["input"]["image"]["key"]
        == new_ref["key"]
    )
    assert again.ok


async def test_an_upload_whose_answer_is_cut_off_is_sent_again(sandbox_server, sandbox_orgs, tmp_path):
    """A blob PUT answered with a 200 status line and then cut off proves nothing was stored:
    the upload must be repeated, not marked done (it was, and the copy downloaded as a 404)."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    blobs = {f"k{i}": os.urandom(1000 + i) for i in range(6)}
    rows = [{"id": key, "input": upload(url, src, key, data)} for key, data in blobs.items()]
    project_with_logs(url, src, rows)
    sandbox_server.set_faults(
        FaultSettings(
            drop_rate=0.5, drop_phase="before", include_paths=(BLOB_PATH,), methods=("PUT",), seed=4
        ),
        org=dst.name,
    )
    try:
        result = await migrate(
            url, src, dst, tmp_path, migration_copy_attachments=True, migration_retry_attempts=12
        )
    finally:
        drops = sandbox_server.fault_stats(dst.name).drops
        sandbox_server.clear_faults()
    assert result.ok, result.summary_path.read_text()
    assert drops > 0
    copied = all_rows(url, dst, "project_logs", dest_project(url, dst))
    assert {key: download(url, dst, copied[key]["input"]) for key in blobs} == blobs


async def test_attachment_over_the_cap_is_reported(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    ref = upload(url, src, "big", b"x" * 5000)
    project_with_logs(url, src, [{"id": "a", "input": ref}])
    result = await migrate(
        url, src, dst, tmp_path, migration_copy_attachments=True, migration_attachment_max_bytes=1000
    )
    notes = [n for c in result.report["events"]["containers"] for n in c["notes"]]
    assert any("attachment big not copied" in n for n in notes), notes


async def test_created_window_applies_to_rows(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    rows = [{"id": f"r{d}", "created": f"2026-03-{d:02d}T12:00:00Z", "input": d} for d in range(1, 11)]
    project_with_logs(url, src, rows)
    result = await migrate(
        url,
        src,
        dst,
        tmp_path,
        migration_created_after="2026-03-03",
        migration_created_before="2026-03-06T12:00:00Z",
    )
    assert result.ok
    assert sorted(all_rows(url, dst, "project_logs", dest_project(url, dst))) == ["r3", "r4", "r5"]


class NoBtqlTransport(httpx.AsyncBaseTransport):
    """The real sandbox over HTTP, except that /btql does not exist (an older data plane)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/btql":
            return httpx.Response(404, json={"error": "Not found"})
        return await self.inner.handle_async_request(request)


class Seen:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    def has(self, row_id: str) -> bool:
        return row_id in self.ids

    def mark(self, row_ids: list[str]) -> None:
        self.ids.update(row_ids)


async def test_fetch_fallback_keeps_only_the_latest_version(sandbox_server, sandbox_org):
    url, org = sandbox_server.url, sandbox_org
    project = project_with_logs(url, org, [{"id": f"r{i}", "input": i} for i in range(30)])
    insert(url, org, "project_logs", project, [{"id": f"r{i}", "input": i * 100} for i in range(0, 30, 3)])
    async with ApiClient(
        side="source", base_url=url, api_key=org.api_key, transport=NoBtqlTransport()
    ) as source:
        reader = FetchReader(source, "project_logs", project, 7, Seen(), Window())
        rows = [row async for page in reader.pages() for row in page.rows]
    assert sorted(r["id"] for r in rows) == sorted(f"r{i}" for i in range(30))
    assert all(
        r["input"] == (int(r["id"][1:]) * 100 if int(r["id"][1:]) % 3 == 0 else int(r["id"][1:]))
        for r in rows
    )


async def test_migration_falls_back_to_fetch_without_btql(
    sandbox_server, sandbox_orgs, tmp_path, monkeypatch
):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    project_with_logs(
        url,
        src,
        [{"id": f"r{i}", "input": i, "span_id": f"s{i}", "root_span_id": f"s{i}"} for i in range(25)],
    )
    import braintrust_migrate.client as client_module

    real = client_module.client_for

    def without_btql(settings, side, transport=None):
        return real(settings, side, transport=NoBtqlTransport() if side == "source" else transport)

    monkeypatch.setattr(
        "braintrust_migrate.source.live.client_for", without_btql
    )  # where the source is opened
    result = await migrate(url, src, dst, tmp_path)
    assert result.ok, result.summary_path.read_text()
    assert [c["reader"] for c in result.report["events"]["containers"]] == ["fetch"]
    assert len(all_rows(url, dst, "project_logs", dest_project(url, dst))) == 25


async def test_attachment_copied_from_another_state_folder_lands_on_the_same_key(
    sandbox_server, sandbox_orgs, tmp_path
):
    """Uploads are not idempotent by themselves: a copy repeated without the local record (a
    kill before it was saved, another --state-dir) must reuse the key, leaving no orphan blob."""
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    blob = os.urandom(4096)
    project_with_logs(url, src, [{"id": "a", "input": {"image": upload(url, src, "k-1", blob)}}])
    first = await migrate(url, src, dst, tmp_path / "one", migration_copy_attachments=True)
    second = await migrate(url, src, dst, tmp_path / "two", migration_copy_attachments=True)
    assert first.ok and second.ok
    ref = all_rows(url, dst, "project_logs", dest_project(url, dst))["a"]["input"]["image"]
    assert download(url, dst, ref) == blob
    with sandbox_server.app.state.sandbox.store.transaction() as tx:  # the sandbox's own record
        keys = [r[0] for r in tx.execute("SELECT key FROM attachments WHERE org_id = ?", (dst.id,))]
    assert keys == [ref["key"]]
