"""An export folder read as a source (`FolderSource`) and checked before reading (`integrity.check`).

Folders are built here by hand with the layout helpers (files, sha256, manifest), independent of
the exporter; expectations are computed from the rows and bytes written, not from the reader."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from braintrust_migrate.archive import ArchiveError, FolderSource, check, open_folder, open_source
from braintrust_migrate.archive import layout as L
from braintrust_migrate.archive.distinct import DistinctIds
from braintrust_migrate.client import ApiError, PermissionDeniedError
from braintrust_migrate.config import ConfigError, load_settings
from braintrust_migrate.engine.resources import BY_NAME
from braintrust_migrate.source.reader import Window
from braintrust_migrate.urlguard import DownloadRefused

EXP, DS = "e0000000-0000-0000-0000-000000000001", "d0000000-0000-0000-0000-000000000002"
BLOB = bytes(range(256)) * 700  # 175 KiB: several 64 KiB chunks


def row(n: int, row_id: str | None = None, xact: int | None = None, day: int = 1) -> dict[str, Any]:
    return {
        "id": row_id or f"r{n}",
        "_pagination_key": f"p{n:06d}",
        "_xact_id": str(xact if xact is not None else 1000 + n),
        "created": f"2026-01-{day:02d}T00:00:00Z",
        "input": {"n": n},
    }


class Folder:
    """Writes an export folder file by file and lists each file in the manifest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, L.FileEntry] = {}
        self.containers: list[L.Container] = []
        self.attachments: dict[str, L.AttachmentEntry] = {}
        self.unreadable: list[L.Unreadable] = []
        self.selection: dict[str, Any] = {}
        self.line_bytes: dict[str, list[int]] = {}  # row id -> byte length of each line written

    def put(self, rel: str, data: bytes, rows: int | None = None) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files[rel] = L.FileEntry(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), rows=rows)

    def json(self, rel: str, value: Any) -> None:
        self.put(rel, L.dump_json(value))

    def part(self, rel: str, rows: list[dict[str, Any]]) -> L.Part:
        lines = [orjson.dumps(r) + b"\n" for r in rows]
        for r, line in zip(rows, lines, strict=True):
            self.line_bytes.setdefault(str(r["id"]), []).append(len(line))
        data = b"".join(lines)
        self.put(rel, gzip.compress(data) if rel.endswith(".gz") else data, len(rows))
        keys = [r.get("_pagination_key") for r in rows]
        return L.Part(path=rel, rows=len(rows), first_key=keys[0], last_key=keys[-1])

    def container(self, kind: str, cid: str, parts: list[list[dict[str, Any]]], gz: tuple[int, ...] = ()):
        base = L.container_dir(kind, cid)
        written = [
            self.part(f"{base}/{L.part_name(i, 'gzip' if i in gz else 'none')}", rows)
            for i, rows in enumerate(parts)
        ]
        container = L.Container(kind=kind, id=cid, name=cid[:2], parts=written, complete=True)
        self.containers.append(container)
        return container

    def attach(self, key: str, data: bytes) -> None:
        rel = L.attachment_path(key)
        self.put(rel, data)
        self.attachments[key] = L.AttachmentEntry(path=rel, bytes=len(data), filename="a.bin")

    def manifest(self, **extra: Any) -> L.Manifest:
        manifest = L.Manifest(
            tool_version="test",
            created_at="2026-01-05T00:00:00Z",
            source_org={"id": "org1", "name": "Org", "api_url": "http://x"},
            selection=self.selection,
            containers=self.containers,
            attachments=self.attachments,
            unreadable=self.unreadable,
            files=self.files,
            **extra,
        )
        raw = manifest.model_dump(mode="json")
        L.write_atomic(self.root / L.MANIFEST, L.dump_json(raw))
        return manifest


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    f = Folder(tmp_path / "export")
    f.json(L.ORG_FILE, {"id": "org1", "name": "Org"})
    f.json(L.USERS_FILE, [{"id": "u1", "email": "a@example.com"}])
    f.json(
        L.objects_path("env_var"),
        [
            {"id": "v1", "name": "ORG_VAR", "object_type": "organization", "object_id": "org1"},
            {"id": "v2", "name": "PROJ_VAR", "object_type": "project", "object_id": "p1"},
        ],
    )
    f.json(
        L.objects_path("view"),
        [
            {"id": "w1", "name": "a", "object_type": "project", "object_id": "p1"},
            {"id": "w2", "name": "b", "object_type": "experiment", "object_id": EXP},
        ],
    )
    # Experiment: a plain part, then a gzip part holding a newer version of r2 (an incremental export).
    f.container("experiment", EXP, [[row(1), row(2, xact=1), row(3)], [row(4, "r2"), row(5)]], gz=(1,))
    ds = f.container("dataset", DS, [[row(10, "a", xact=10), row(11, "b", xact=11)], [row(12, "c", xact=12)]])
    # Pin 11: a and b as of version 11; pin 10: a only.
    pin = f"{L.version_dir('dataset', DS, '11')}/{L.part_name(0, 'gzip')}"
    ds.versions["11"] = [f.part(pin, [row(10, "a", xact=10), row(11, "b", xact=11)])]
    ds.versions["10"] = [
        f.part(f"{L.version_dir('dataset', DS, '10')}/{L.part_name(0, 'none')}", [row(10, "a", 10)])
    ]
    f.attach("att/key-1", BLOB)
    f.unreadable.append(L.Unreadable(type="roles", what="all roles", message="403 from GET /v1/role"))
    f.unreadable.append(L.Unreadable(type="views", what="views of project p2", message="403"))
    f.manifest()
    return f


def source(f: Folder) -> FolderSource:
    return open_folder(f.root)


async def all_pages(src: FolderSource, kind: str, cid: str, size: int, **kw: Any) -> list[Any]:
    reader = src.rows(kind, cid, size, kw.pop("window", Window()), kw.pop("after_key", None))
    return [page async for page in reader.pages()]


# --- objects ------------------------------------------------------------------------------------


async def test_objects_users_and_identity(folder: Folder) -> None:
    src = source(folder)
    assert src.side == "source" and src.stats.requests == 0
    assert src.describe() == str(folder.root) and repr(src) == f"FolderSource({folder.root})"
    assert await src.organizations() == [{"id": "org1", "name": "Org"}]
    assert await src.users("Org") == [{"id": "u1", "email": "a@example.com"}]
    org_vars, env_vars = BY_NAME["org_env_vars"], BY_NAME["env_vars"]
    assert [o["id"] for o in await src.list_type(org_vars, "Org")] == ["v1"]  # list_params filter
    assert [o["id"] for o in await src.list_type(org_vars, "Org", filtered=False)] == ["v1", "v2"]
    assert [o["id"] for o in await src.list_type(env_vars, "Org")] == ["v1", "v2"]
    assert await src.list_type(BY_NAME["prompts"], "Org") == []  # no objects file: none exported
    views = BY_NAME["views"]
    assert [o["id"] for o in await src.list_owned(views, "experiment", EXP)] == ["w2"]
    assert await src.list_owned(views, "dataset", DS) == []
    assert (await src.fetch_one(env_vars, "v2") or {})["name"] == "PROJ_VAR"
    assert await src.fetch_one(env_vars, "nope") is None


async def test_unreadable_type_raises_permission_denied(folder: Folder) -> None:
    roles = BY_NAME["roles"]
    with pytest.raises(PermissionDeniedError) as caught:
        await source(folder).list_type(roles, "Org")
    assert caught.value.status == 403 and caught.value.side == "source"
    assert caught.value.path == roles.listing_path and "the export could not read all roles" in str(
        caught.value
    )
    # One owner's listing failed at export: that owner's fails again, the others read.
    views = BY_NAME["views"]
    with pytest.raises(PermissionDeniedError, match="could not read views of project p2"):
        await source(folder).list_owned(views, "project", "p2")
    assert [o["id"] for o in await source(folder).list_owned(views, "project", "p1")] == ["w1"]


# --- rows ---------------------------------------------------------------------------------------


async def test_rows_pages_across_plain_and_gzip_parts(folder: Folder) -> None:
    pages = await all_pages(source(folder), "experiment", EXP, 2)
    assert [[r["id"] for r in p.rows] for p in pages] == [["r1", "r2"], ["r3", "r2"], ["r5"]]
    assert [p.last_key for p in pages] == ["p000002", "p000004", "p000005"]
    assert [r["_xact_id"] for r in pages[0].rows + pages[1].rows][1:4:2] == ["1", "1004"]  # old r2, then new
    lines = folder.line_bytes
    assert sum(p.nbytes for p in pages) == sum(lines["r1"] + lines["r2"] + lines["r3"] + lines["r5"])
    assert await all_pages(source(folder), "experiment", "unknown", 2) == []


async def test_resume_by_after_key_across_a_part_boundary(folder: Folder) -> None:
    src = source(folder)
    # At the end of part 0: part 1 alone.
    assert [
        r["id"] for p in await all_pages(src, "experiment", EXP, 10, after_key="p000003") for r in p.rows
    ] == [
        "r2",
        "r5",
    ]
    # Mid part 0, pages spanning the boundary; the reader's after_key follows the pages.
    reader = src.rows("experiment", EXP, 2, Window(), "p000002")
    got = [(p.last_key, [r["id"] for r in p.rows]) async for p in reader.pages()]
    assert got == [("p000004", ["r3", "r2"]), ("p000005", ["r5"])]
    assert reader.after_key == "p000005"
    assert await all_pages(src, "experiment", EXP, 2, after_key="p000005") == []


async def test_window_filters_rows(tmp_path: Path) -> None:
    f = Folder(tmp_path)
    f.json(L.ORG_FILE, {"id": "o"})
    f.container("dataset", DS, [[row(1, day=1), row(2, day=3)], [row(3, day=5)]], gz=(0,))
    f.manifest()
    window = Window(after=datetime(2026, 1, 2, tzinfo=UTC), before=datetime(2026, 1, 5, tzinfo=UTC))
    src = source(f)
    pages = await all_pages(src, "dataset", DS, 10, window=window)
    assert [r["id"] for p in pages for r in p.rows] == ["r2"]
    assert await src.count("dataset", DS, window) == 1
    assert await src.count("dataset", DS, Window(after=window.after)) == 2


async def test_count_distinct_ids_and_by_ids_latest_wins(folder: Folder) -> None:
    src = source(folder)
    assert await src.count("experiment", EXP, Window()) == 4  # r2 twice, counted once
    assert await src.count("experiment", EXP, Window(), "p000003") == 2
    found = await src.by_ids("experiment", EXP, ["r2", "r5", "zz"])
    assert set(found) == {"r2", "r5"} and found["r2"]["_xact_id"] == "1004"
    sample = await src.sample("experiment", EXP, Window(), "p000001", 2)
    assert [r["id"] for r in sample] == ["r2", "r3"]
    fetched = src.fetch_rows("experiment", EXP, 10, None, Window(), "p000004")
    assert [r["id"] async for p in fetched.pages() for r in p.rows] == ["r5"]


async def test_rows_without_pagination_key_get_synthetic_increasing_keys(tmp_path: Path) -> None:
    f = Folder(tmp_path)
    f.json(L.ORG_FILE, {"id": "o"})
    rows = [{"id": f"x{i}", "input": i} for i in range(5)]
    f.container("project_logs", "pl", [rows[:3], rows[3:]], gz=(1,))
    f.manifest()
    src = source(f)
    pages = await all_pages(src, "project_logs", "pl", 2)
    keys = [p.last_key for p in pages]
    assert keys == sorted(keys) and len(set(keys)) == 3 and all(k and k.startswith("f") for k in keys)
    resumed = await all_pages(src, "project_logs", "pl", 10, after_key=keys[0])
    assert [r["id"] for p in resumed for r in p.rows] == ["x2", "x3", "x4"]


# --- snapshots ----------------------------------------------------------------------------------


async def test_snapshots_as_of_a_version_and_since(folder: Folder) -> None:
    snap = source(folder).snapshots(DS, 1, Window())
    assert snap.btql is True
    assert await snap.ids(None) == ({"a", "b", "c"}, "p000012")
    assert await snap.ids(11) == ({"a", "b"}, "p000011")
    assert await snap.ids(10) == ({"a"}, "p000010")
    assert [[r["id"] for r in page] async for page in snap.rows(11, None)] == [["a"], ["b"]]
    assert [r["id"] async for page in snap.rows(11, 10) for r in page] == ["b"]
    assert [r["id"] async for page in snap.rows(None, 11) for r in page] == ["c"]
    assert (await snap.any_row(10) or {})["id"] == "a"
    with pytest.raises(ApiError) as caught:
        await snap.ids(99)
    assert caught.value.status == 404 and "dataset version 99 is not in the export" in str(caught.value)


async def test_snapshot_latest_occurrence_wins(tmp_path: Path) -> None:
    f = Folder(tmp_path)
    f.json(L.ORG_FILE, {"id": "o"})
    f.container("dataset", DS, [[row(1, "a", 1), row(2, "b", 2)], [row(3, "a", 3), row(4, "z", 4, day=9)]])
    f.manifest()
    snap = source(f).snapshots(DS, 10, Window(before=datetime(2026, 1, 5, tzinfo=UTC)))
    got = [r async for page in snap.rows(None, None) for r in page]
    assert [(r["id"], r["_xact_id"]) for r in got] == [("b", "2"), ("a", "3")]  # z: outside the window
    assert await snap.ids(None) == ({"a", "b"}, "p000003")


# --- attachments --------------------------------------------------------------------------------


async def test_attachment_blob_bytes(folder: Folder) -> None:
    src = source(folder)
    blob, size = await src.attachment({"key": "att/key-1", "filename": "a.bin"}, "org2")
    chunks = [chunk async for chunk in blob.aiter_bytes()]
    await blob.aclose()
    assert b"".join(chunks) == BLOB and size == len(BLOB)
    assert len(chunks) == 3 and all(len(c) <= 64 * 1024 for c in chunks)
    with pytest.raises(DownloadRefused, match="attachment other is not in the export"):
        await src.attachment({"key": "other"}, "org2")


# --- integrity ----------------------------------------------------------------------------------


def refused(root: Path) -> str:
    with pytest.raises(ArchiveError) as caught:
        check(root)
    assert isinstance(caught.value, ConfigError)
    message = str(caught.value)
    assert "\n" not in message and message
    return message


def exp_part(i: int, gz: bool = False) -> str:
    return f"{L.container_dir('experiment', EXP)}/{L.part_name(i, 'gzip' if gz else 'none')}"


def test_intact_folder_passes(folder: Folder) -> None:
    manifest = check(folder.root)
    assert set(manifest.files) == set(folder.files) and len(manifest.containers) == 2


def test_flipped_byte_names_the_file(folder: Folder) -> None:
    path = folder.root / exp_part(0)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    assert refused(folder.root) == f"{exp_part(0)}: sha256 differs from the manifest (tampered or truncated)"


def test_truncated_part_names_the_file(folder: Folder) -> None:
    path = folder.root / exp_part(1, gz=True)
    path.write_bytes(path.read_bytes()[:-5])
    message = refused(folder.root)
    assert message.startswith(f"{exp_part(1, gz=True)}: ") and "bytes on disk, the manifest says" in message


def test_missing_part_names_the_file(folder: Folder) -> None:
    (folder.root / exp_part(0)).unlink()
    assert refused(folder.root).startswith(f"{exp_part(0)}: missing")


def test_extra_unlisted_part_is_refused_but_work_dir_ignored(folder: Folder) -> None:
    (folder.root / L.WORK_DIR).mkdir()
    (folder.root / L.WORK_DIR / "part-000009.jsonl").write_bytes(b"{}\n")
    check(folder.root)  # .export/ is not part of the export
    extra = exp_part(2)
    (folder.root / extra).write_bytes(orjson.dumps(row(9)) + b"\n")
    assert refused(folder.root).startswith(f"{extra}: on disk but not in the manifest")


def test_unlisted_objects_file_is_refused(folder: Folder) -> None:
    (folder.root / L.objects_path("prompt")).write_bytes(b"[]")
    assert refused(folder.root).startswith("objects/prompt.json: on disk but not in the manifest")


def test_newer_format_version_is_refused(folder: Folder) -> None:
    raw = orjson.loads((folder.root / L.MANIFEST).read_bytes())
    raw["format_version"] = 2
    raw["something_new"] = {"shape": "unknown"}
    (folder.root / L.MANIFEST).write_bytes(orjson.dumps(raw))
    assert refused(folder.root) == (
        f"{folder.root} was written by a newer format (v2); this tool reads up to v1: upgrade braintrust-migrate"
    )


def test_not_an_export_folder(tmp_path: Path, folder: Folder) -> None:
    assert refused(tmp_path / "nowhere").endswith("not a folder (give the folder `export --to` wrote)")
    (tmp_path / "empty").mkdir()
    assert f"{tmp_path / 'empty' / L.MANIFEST}: missing" in refused(tmp_path / "empty")
    (folder.root / L.MANIFEST).write_bytes(orjson.dumps({"format": "something-else", "format_version": 1}))
    assert "is not an export folder" in refused(folder.root)
    (folder.root / L.MANIFEST).write_bytes(b"{not json")
    assert refused(folder.root).startswith(f"{folder.root / L.MANIFEST}: not readable as JSON")


def test_listed_path_outside_the_folder_is_refused(folder: Folder) -> None:
    outside = folder.root.parent / "secret.txt"
    outside.write_bytes(b"x")
    raw = orjson.loads((folder.root / L.MANIFEST).read_bytes())
    raw["files"]["../secret.txt"] = {"sha256": hashlib.sha256(b"x").hexdigest(), "bytes": 1}
    (folder.root / L.MANIFEST).write_bytes(orjson.dumps(raw))
    assert "'../secret.txt', which is not a file inside the export" in refused(folder.root)


def test_part_without_checksum_is_refused(folder: Folder) -> None:
    raw = orjson.loads((folder.root / L.MANIFEST).read_bytes())
    del raw["files"][exp_part(0)]
    (folder.root / L.MANIFEST).write_bytes(orjson.dumps(raw))
    assert f"it names {exp_part(0)} but does not list its checksum" in refused(folder.root)


def test_container_names_are_for_bt_sync_folders_only(folder: Folder) -> None:
    # An export names its own containers: a destination name given for one is a mistake, said.
    with pytest.raises(ArchiveError, match="bt sync pull folder"):
        open_source(folder.root, project="P")
    assert open_source(folder.root).manifest.containers  # without them it opens


def test_the_exports_selection_is_the_imports_unless_it_gives_its_own(tmp_path: Path) -> None:
    f = Folder(tmp_path / "export")
    f.json(L.ORG_FILE, {"id": "org1", "name": "Org"})
    after = "2026-01-02T00:00:00+00:00"
    chosen = {"resources": ["datasets", "projects"], "projects": ["P1"], "created_after": after}
    f.selection = chosen
    f.manifest()
    base = load_settings({"bt_dest_api_key": "k"}, env_file=None)
    applied = open_folder(f.root).settings_for(base)
    assert applied.migration_resources == ["datasets", "projects"] and applied.migration_projects == ["P1"]
    assert applied.migration_created_after == datetime(2026, 1, 2, tzinfo=UTC)
    own = load_settings({"bt_dest_api_key": "k", "migration_projects": ["P2"]}, env_file=None)
    assert open_folder(f.root).settings_for(own).migration_projects == ["P2"]


def test_distinct_ids_are_counted_once_past_the_in_memory_limit() -> None:
    ids = DistinctIds(in_memory=10)
    for n in range(95):
        ids.add(f"row-{n % 40}")  # 40 distinct ids, most seen twice or more, across spills to disk
    assert ids.count() == 40
    ids.add("row-new")
    assert ids.count() == 41
    ids.close()
