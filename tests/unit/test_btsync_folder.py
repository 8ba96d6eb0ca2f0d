"""Reading `bt sync pull` folders (archive/btsync.py): detection, file order, malformed lines, and
the export-like manifest built for them. Folders are shaped as bt's sync command writes them:
ROOT/<type>_<name>/<12 hex>/{spec,state,manifest}.json + data/part-NNNNNN.jsonl."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from braintrust_migrate.archive import btsync, layout
from braintrust_migrate.config import ConfigError

FIXTURE = Path(__file__).parent.parent / "fixtures" / "btsync" / "bt-sync"
FIXTURE_SPEC = FIXTURE / "experiment_My_Exp__1" / "f46cc767794b"


def _spec(object_type: str, name: str, direction: str = "pull") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "object_ref": f"{object_type}:{name}",
        "object_type": object_type,
        "object_name": name,
        "direction": direction,
        "scope": "traces",
        "filter": None,
        "limit": 100,
        "page_size": 200,
    }


def _row(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "_pagination_key": f"p{900 - i:08d}",
        "_xact_id": str(1000 + i),
        "created": f"2026-10-01T00:00:{i % 60:02d}Z",
        "id": f"r{i}",
        "span_id": f"s{i}",
        "root_span_id": "s0",
        "span_parents": [] if i == 0 else ["s0"],
        "input": {"i": i},
        **extra,
    }


def make_pull(
    root: Path,
    object_type: str,
    name: str,
    parts: dict[str, list[Any]],
    *,
    status: str = "completed",
    items_done: int | None = None,
    spec_hash: str = "0123456789ab",
    legacy: bool = False,
) -> Path:
    """A bt pull spec dir: `parts` maps a file name in data/ (or a legacy data.jsonl) to its lines
    (dicts are dumped as JSON, strings written as they are)."""
    if legacy:
        spec_dir = root / object_type / name / "pull" / "traces" / f"spec_{spec_hash}"
    else:
        spec_dir = root / f"{object_type}_{name}" / spec_hash
    data = spec_dir if legacy else spec_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    total = 0
    for file_name, lines in parts.items():
        text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
        (data / file_name).write_text(text)
        total += sum(1 for line in lines if not (isinstance(line, str) and not line.strip()))
    spec = _spec(object_type, name)
    done = total if items_done is None else items_done
    state = {"schema_version": 1, "status": status, "phase": status, "items_done": done, "output_path": "x"}
    manifest = {
        "schema_version": 1,
        "spec_hash": spec_hash * 5,
        "spec": spec,
        "status": status,
        "items_done": done,
    }
    (spec_dir / "spec.json").write_text(json.dumps(spec, indent=2))
    (spec_dir / "state.json").write_text(json.dumps(state, indent=2))
    (spec_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return spec_dir


def test_detects_the_fixture_at_every_level() -> None:
    for path in (FIXTURE, FIXTURE.parent, FIXTURE_SPEC.parent, FIXTURE_SPEC, FIXTURE_SPEC / "data"):
        found = btsync.detect(path)
        assert found is not None, path
        assert found.spec_dir == FIXTURE_SPEC
        assert (found.object_type, found.object_name) == ("experiment", "My Exp #1")
        assert found.completed and found.items_done == 5
        assert [p.name for p in found.files] == ["part-000001.jsonl", "part-000002.jsonl"]


def test_rows_come_in_file_order_with_fields_kept() -> None:
    folder = btsync.detect(FIXTURE)
    assert folder is not None
    expected = [
        json.loads(line)
        for name in ("part-000001.jsonl", "part-000002.jsonl")
        for line in (FIXTURE_SPEC / "data" / name).read_text().splitlines()
    ]
    rows = list(folder.iter_rows())
    assert rows == expected and len(rows) == 5
    assert [r["id"] for r in rows] == ["row-0", "row-1", "row-2", "row-3", "row-4"]
    # bt pulls spans newest first: the file order is not `_pagination_key` order
    keys = [r["_pagination_key"] for r in rows]
    assert keys == sorted(keys, reverse=True)
    for field in ("created", "_xact_id", "span_id", "root_span_id", "span_parents", "experiment_id"):
        assert all(field in r for r in rows)


def test_not_a_bt_folder(tmp_path: Path) -> None:
    assert btsync.detect(tmp_path / "absent") is None
    assert btsync.detect(tmp_path) is None  # empty
    (tmp_path / "rows.jsonl").write_text('{"id": "a"}\n')  # bare JSON Lines: the object type is unknown
    assert btsync.detect(tmp_path) is None
    export = tmp_path / "export"
    export.mkdir()
    (export / "manifest.json").write_text(json.dumps({"format": layout.FORMAT, "format_version": 1}))
    assert btsync.detect(export) is None
    # a push run of bt (no rows of its own) is not a pull
    spec_dir = tmp_path / "bt" / "project_logs_p1" / "aaaaaaaaaaaa"
    spec_dir.mkdir(parents=True)
    (spec_dir / "spec.json").write_text(json.dumps(_spec("project_logs", "p1", direction="push")))
    assert btsync.detect(tmp_path / "bt") is None
    # an unknown object type
    (spec_dir / "spec.json").write_text(json.dumps(_spec("prompt", "p1")))
    assert btsync.detect(tmp_path / "bt") is None


def test_part_files_sorted_by_number_and_strays_ignored(tmp_path: Path) -> None:
    spec_dir = make_pull(
        tmp_path / "bt-sync",
        "project_logs",
        "p-1",
        {
            "part-1000000.jsonl": [_row(3)],
            "part-000002.jsonl": [_row(1)],
            "part-999999.jsonl": [_row(2)],
            "part-000001.jsonl": [_row(0)],
            "notes.txt": ["not rows"],
            "part-000003.jsonl.bak": ["{}"],
        },
    )
    folder = btsync.detect(tmp_path / "bt-sync")
    assert folder is not None and folder.spec_dir == spec_dir
    names = [p.name for p in folder.files]
    assert names == ["part-000001.jsonl", "part-000002.jsonl", "part-999999.jsonl", "part-1000000.jsonl"]
    assert [r["id"] for r in folder.iter_rows()] == ["r0", "r1", "r2", "r3"]


def test_legacy_layout_single_file(tmp_path: Path) -> None:
    make_pull(tmp_path, "dataset", "d1", {"data.jsonl": [_row(0), "", "   ", _row(1)]}, legacy=True)
    folder = btsync.detect(tmp_path)
    assert folder is not None
    assert folder.object_type == "dataset" and [p.name for p in folder.files] == ["data.jsonl"]
    assert [r["id"] for r in folder.iter_rows()] == ["r0", "r1"]  # blank lines skipped


@pytest.mark.parametrize("bad", ['{"id": "r1", "input": ', "[1, 2]", '"text"', "not json"])
def test_malformed_line_names_file_and_line(tmp_path: Path, bad: str) -> None:
    make_pull(
        tmp_path,
        "experiment",
        "e1",
        {"part-000001.jsonl": [_row(0)], "part-000002.jsonl": [_row(1), "", bad]},
    )
    folder = btsync.detect(tmp_path)
    assert folder is not None
    with pytest.raises(ConfigError) as caught:
        list(folder.iter_rows())
    message = str(caught.value)
    assert message == "experiment_e1/0123456789ab/data/part-000002.jsonl:3: not a JSON object"
    assert "\n" not in message
    # synthesize parses everything first: the error comes before anything is handed out
    with pytest.raises(ConfigError, match=r"part-000002\.jsonl:3: not a JSON object"):
        btsync.synthesize(folder, project_name="P", container_name="E")


def test_several_pulls_are_ambiguous(tmp_path: Path) -> None:
    make_pull(tmp_path, "experiment", "e1", {"part-000001.jsonl": [_row(0)]}, spec_hash="aaaaaaaaaaaa")
    make_pull(tmp_path, "experiment", "e1", {"part-000001.jsonl": [_row(1)]}, spec_hash="bbbbbbbbbbbb")
    with pytest.raises(ConfigError) as caught:
        btsync.detect(tmp_path)
    message = str(caught.value)
    assert "2 bt sync pulls" in message and "experiment_e1/aaaaaaaaaaaa" in message and "\n" not in message
    one = btsync.detect(tmp_path / "experiment_e1" / "bbbbbbbbbbbb")
    assert one is not None and [r["id"] for r in one.iter_rows()] == ["r1"]


def test_synthesize_experiment_validates_as_manifest() -> None:
    folder = btsync.detect(FIXTURE.parent)
    assert folder is not None
    manifest, objects = btsync.synthesize(
        folder, project_name="Dest P", container_name="Imported", org_name="src"
    )
    checked = layout.Manifest.model_validate(json.loads(manifest.model_dump_json()))
    assert checked.format == layout.FORMAT and checked.files == {}  # bt files carry no sha256
    assert checked.objects == {"project": 1, "experiment": 1}
    (container,) = checked.containers
    assert container.kind == "experiment" and container.name == "Imported" and container.project == "Dest P"
    assert container.complete and container.row_keys == "file_order"
    # the ids the rows carry are kept: the container is the rows' experiment
    first = json.loads((FIXTURE_SPEC / "data" / "part-000001.jsonl").read_text().splitlines()[0])
    assert container.id == first["experiment_id"]
    assert objects["experiment"] == [
        {"id": first["experiment_id"], "name": "Imported", "project_id": first["project_id"]}
    ]
    assert objects["project"] == [{"id": first["project_id"], "name": "Dest P"}]
    # parts point at bt's own files, relative to the folder given, with their line counts
    root = FIXTURE.parent
    assert [p.path for p in container.parts] == [
        f"bt-sync/experiment_My_Exp__1/f46cc767794b/data/part-00000{i}.jsonl" for i in (1, 2)
    ]
    for part in container.parts:
        lines = [line for line in (root / part.path).read_text().splitlines() if line.strip()]
        assert part.rows == len(lines)
    assert sum(p.rows for p in container.parts) == 5
    assert checked.selection["resources"] == ["experiments"]
    assert checked.selection["bt_sync"]["object_ref"] == "experiment:My Exp #1"


def test_synthesize_project_logs_is_the_project(tmp_path: Path) -> None:
    make_pull(tmp_path, "project_logs", "p1", {"part-000001.jsonl": [_row(0), _row(1)]})  # rows lack ids
    folder = btsync.detect(tmp_path)
    assert folder is not None
    manifest, objects = btsync.synthesize(folder, project_name="Logs P")
    layout.Manifest.model_validate(manifest.model_dump())
    (container,) = manifest.containers
    assert list(objects) == ["project"] and container.id == objects["project"][0]["id"]
    assert container.id.startswith("btsync-project-") and container.name == "Logs P"
    assert manifest.selection["resources"] == ["logs"]
    again, _ = btsync.synthesize(btsync.detect(tmp_path), project_name="Logs P")  # type: ignore[arg-type]
    assert again.containers[0].id == container.id  # stable across runs: resumable state


def test_unfinished_or_short_pull_refused(tmp_path: Path) -> None:
    make_pull(tmp_path / "a", "dataset", "d1", {"part-000001.jsonl": [_row(0)]}, status="running")
    running = btsync.detect(tmp_path / "a")
    assert running is not None and not running.completed
    with pytest.raises(ConfigError, match=r"did not finish \(status running\)"):
        btsync.synthesize(running, project_name="P", container_name="D")
    manifest, _ = btsync.synthesize(running, project_name="P", container_name="D", allow_incomplete=True)
    assert not manifest.containers[0].complete

    make_pull(tmp_path / "b", "dataset", "d1", {"part-000001.jsonl": [_row(0)]}, items_done=3)
    short = btsync.detect(tmp_path / "b")
    assert short is not None
    with pytest.raises(ConfigError, match="holds 1 rows but bt recorded 3"):
        btsync.synthesize(short, project_name="P", container_name="D")


def test_container_name_required_for_experiments(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "bt-sync")
    folder = btsync.detect(tmp_path / "bt-sync")
    assert folder is not None
    with pytest.raises(ConfigError, match="name the destination experiment"):
        btsync.synthesize(folder, project_name="P")
