"""The HTML reports: rendered from the report dicts alone, offline, every user value escaped."""

from __future__ import annotations

import html
import os
import re
import stat
from pathlib import Path
from typing import Any

from braintrust_migrate.engine.events.stage import stream_report
from braintrust_migrate.engine.events.stream import StreamOutcome, StreamSpec
from braintrust_migrate.engine.report import Outcome, Unresolved, build_report, write_report
from braintrust_migrate.engine.report_html import render_html
from braintrust_migrate.engine.tally import MAX_POINTS, SAMPLE_S, Throughput
from braintrust_migrate.verify.report_html import render_verify_html
from tests.unit.core.html_page import Page

EVIL = '<script>alert("x")</script> it\'s & "quoted"'
EVIL_PROJECT = '<b>proj</b> "α"'
EVIL_ERROR = "bad </td><img src=http://evil.example/x.png> body"


def migration_report(**meta: Any) -> dict[str, Any]:
    outcomes = [
        Outcome("prompts", "prompt", EVIL, "s1", "created", project=EVIL_PROJECT, dest_id="d1"),
        Outcome("prompts", "prompt", "p2", "s2", "unchanged", project=EVIL_PROJECT),
        Outcome("datasets", "dataset", "ds", "s3", "failed", project="Other", error={"message": EVIL_ERROR}),
        Outcome("functions", "function", "bundle", "s4", "skipped", reason="code_bundle_not_migratable"),
        Outcome(
            "views",
            "view",
            "v",
            "s5",
            "created",
            project="Other",
            unresolved=[Unresolved("options.ref", "dataset", "gone-id")],
        ),
    ]
    streams = [
        StreamOutcome(
            StreamSpec("experiment", "e1", "e1d", EVIL, EVIL_PROJECT), rows_read=40, rows_written=40
        ),
        StreamOutcome(
            StreamSpec("project_logs", "l1", "l1d", "logs", "Other"),
            status="failed",
            rows_read=10,
            rows_written=7,
            rows_failed=3,
            failed_rows=[{"row_id": "r<1>", "size": 9, "reason": "too big"}],
            error="stream stopped <here>",
        ),
    ]
    base = {"run_id": "20260101T000000Z", "dry_run": False, "source_org": "src <org>", "dest_org": "dst"}
    base |= {"duration_s": 3.5, "complete": True, "interrupted": False, **meta}
    base["throughput"] = {"interval_s": 0.1, "points": [[0.0, 0, 0], [1.0, 20, 100], [2.0, 47, 300]]}
    return build_report(base, outcomes, ["nobody@example.com"], stream_report(streams))


def test_the_page_carries_the_report_escaped_and_offline() -> None:
    text = render_html(migration_report())
    page = Page(text)
    # The names come back as text, never as markup.
    assert "script" not in page.tags and "img" not in page.tags and "b" not in page.tags
    assert EVIL in page.text and EVIL_PROJECT in page.text and EVIL_ERROR in page.text
    assert "<script" not in text and "<img" not in text
    # Offline: nothing fetched from anywhere, no scripts at all.
    links = [(tag, name, value) for tag, name, value in page.attrs if name in ("src", "href")]
    assert links == []
    own = text.replace(html.escape(EVIL_ERROR), "")  # the error's URL is shown as text, inert
    assert not re.search(r"@import|url\(|https?://(?!www\.w3\.org/2000/svg)", own)
    csp = [v for _, name, v in page.attrs if name == "content" and v and "default-src" in v]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'"]


def test_tables_per_type_per_project_and_per_container() -> None:
    page = Page(render_html(migration_report()))
    per_type = {row["type"]: row for row in page.table_with("type", "created")}
    assert per_type["prompts"]["created"] == "1" and per_type["prompts"]["unchanged"] == "1"
    assert per_type["datasets"]["failed"] == "1" and per_type["prompts"]["total"] == "2"
    per_project = {row["project"]: row for row in page.table_with("project", "created")}
    assert per_project[EVIL_PROJECT]["created"] == "1"
    assert per_project[EVIL_PROJECT]["event rows written"] == "40"
    assert per_project["Other"]["failed"] == "1" and per_project["(org level)"]["skipped"] == "1"
    containers = page.table_with("row type", "project", "container", "status")
    assert [(c["container"], c["status"], c["written"]) for c in containers] == [
        (EVIL, "done", "40"),
        ("logs", "failed", "7"),
    ]
    summary = page.facts
    assert summary["run id"] == "20260101T000000Z" and summary["dry run"] == "no"
    assert summary["exit code"].startswith("1: 2 failed")  # the failed object and the failed stream


def test_failures_and_todos_are_grouped_with_their_fix() -> None:
    page = Page(render_html(migration_report()))
    text = page.text
    assert "failed: error (1)" in text and "skipped: code_bundle_not_migratable (1)" in text
    assert "failed event stream: experiment_rows" not in text
    assert "stream stopped <here>" in text and ["r<1>", "9", "too big"] in [r for t in page.tables for r in t]
    for reason in ("code_bundle_not_migratable", "unresolved_reference", "user_not_mapped"):
        assert f"{reason} (1)" in text
    assert "fix: re-push the bundled code with `braintrust push` against the destination org" in text
    refs = page.table_with("type", "project", "name", "references")
    assert refs == [
        {"type": "views", "project": "Other", "name": "v", "references": "options.ref -> gone-id"}
    ]
    assert "nobody@example.com" in text


def test_throughput_chart_is_an_inline_svg_from_the_points() -> None:
    page = Page(render_html(migration_report()))
    assert "svg" in page.tags and "polygon" in page.tags and "polyline" in page.tags
    (line,) = [v for tag, name, v in page.attrs if tag == "polyline" and name == "points"]
    assert len(line.split()) == 3  # one vertex per sample
    assert "27" in page.text  # the highest rate: 27 rows in the last second, on the axis
    quiet = migration_report()
    quiet["throughput"] = {"interval_s": 0.1, "points": [[0.0, 0, 0]]}
    assert "svg" not in Page(render_html(quiet)).tags
    assert "No event rows were written" in render_html(quiet)


def test_exit_meaning_follows_the_outcome() -> None:
    interrupted = Page(render_html(migration_report(interrupted=True, complete=False))).text
    assert (
        "130: interrupted; re-run the same command to resume" in interrupted and "INTERRUPTED" in interrupted
    )
    clean = build_report({"run_id": "r", "dry_run": True, "complete": True}, [], [])
    page = Page(render_html(clean))
    assert "0: dry run, nothing written" in page.text and "OK" in page.text
    assert "svg" not in page.tags  # a dry run writes no rows


def test_a_dry_run_shows_its_plan() -> None:
    report = build_report({"run_id": "r", "dry_run": True}, [], [])
    container = {"type": "logs", "container": "project_logs", "name": EVIL, "project": "P", "rows_total": 90}
    container |= {"rows_to_copy": 60, "already_copied": 30, "bytes_estimate": 2 * 1048576}
    report["events"]["plan"] = {
        "totals": {"logs": {"containers": 1, "rows_total": 90, "rows_to_copy": 60, "already_copied": 30,
                            "bytes_estimate": 2 * 1048576}},
        "containers": [container],
    }  # fmt: skip
    page = Page(render_html(report))
    (row,) = page.table_with("row type", "containers", "rows", "to copy")
    assert row["to copy"] == "60" and row["~MiB"] == "2.0"
    (planned,) = page.table_with("row type", "project", "container", "rows", "to copy")
    assert planned["container"] == EVIL


def test_write_report_writes_the_page_beside_the_json_privately(tmp_path: Path) -> None:
    report = migration_report()
    old = os.umask(0)
    try:
        json_path, _ = write_report(tmp_path / "run", report)
    finally:
        os.umask(old)
    page_path = json_path.with_name("migration_report.html")
    assert page_path.read_text(encoding="utf-8") == render_html(report)
    assert stat.S_IMODE(page_path.stat().st_mode) == 0o600


def verify_report(ok: bool) -> dict[str, Any]:
    obj = {"type": "prompts", "ok": ok, "source": 2, "matched": 1, "missing": 0 if ok else 1, "extra": 0}
    obj |= {"differing": 0 if ok else 1, "missing_sample": [] if ok else [{"name": EVIL, "source_id": "s"}]}
    obj |= {"extra_sample": [], "not_migratable": [], "expected": 1}
    obj["differing_sample"] = (
        [] if ok else [{"name": "p2", "project": EVIL_PROJECT, "fields": ["prompt_data.x"]}]
    )
    expected = {"type": "ai_secrets", "name": "KEY", "reason": "secret_needs_value", "what": "no value",
                "todo": "set the value <here>"}  # fmt: skip
    event = {"container": "experiment", "name": "e", "ok": ok, "source_rows": 5, "dest_rows": 5 if ok else 4}
    event |= {
        "missing": 0 if ok else 1,
        "extra": 0,
        "differing": 0,
        "missing_sample": [] if ok else ["row-9"],
    }
    event |= {"extra_sample": [], "differing_sample": [], "sampled_rows": None}
    return {
        "ok": ok,
        "source_org": "a",
        "dest_org": "b",
        "started_at": "t",
        "duration_s": 1.0,
        "objects": [obj],
        "events": [event],
        "source_id_leaks": []
        if ok
        else [{"type": "views", "dest_id": "d", "field": "f", "source_id": "s<x>"}],
        "source_id_leak_count": 0 if ok else 1,
        "expected_differences": [expected],
        "expected_difference_counts": {"secret_needs_value": 1},
        "not_compared": ["secret values"],
    }


def test_verify_page_shows_the_verdict_and_every_difference() -> None:
    text = render_verify_html(verify_report(ok=False))
    page = Page(text)
    assert "DIFFERENCES FOUND" in page.text and "1: differences found" in page.text
    assert "script" not in page.tags and EVIL in page.text
    diffs = page.table_with("difference", "type", "name", "fields")
    assert [(d["difference"], d["name"], d["fields"]) for d in diffs] == [
        ("missing", EVIL, ""),
        ("differing", f"{EVIL_PROJECT}/p2", "prompt_data.x"),
    ]
    (row,) = page.table_with("container", "name", "source rows")
    assert (row["dest rows"], row["missing"]) == ("4", "1")
    assert ["missing", "experiment e", "row-9"] in [r for t in page.tables for r in t]
    assert "s<x>" in page.text and "to do: set the value <here>" in page.text
    assert [a for a in page.attrs if a[1] in ("src", "href")] == []
    parity = Page(render_verify_html(verify_report(ok=True))).text
    assert "PARITY" in parity and "0: parity" in parity and "DIFFERENCES" not in parity


def test_throughput_samples_at_most_every_interval_and_stays_bounded() -> None:
    now = [100.0]
    series = Throughput(clock=lambda: now[0])
    for _ in range(5):  # five batches within one interval: one sample for them
        now[0] += SAMPLE_S / 10
        series.add(10, 1)
    assert series.to_dict()["points"] == [[0.0, 0, 0], [round(SAMPLE_S / 2, 3), 50, 5]]
    now[0] += 3 * SAMPLE_S  # a pause: the burst's end is kept, so the chart shows the pause
    series.add(1, 1)
    assert [p[1] for p in series.to_dict()["points"]] == [0, 50, 51]
    for _ in range(3 * MAX_POINTS):
        now[0] += SAMPLE_S
        series.add(1, 1)
    data = series.to_dict()
    assert len(data["points"]) <= MAX_POINTS + 1 and data["interval_s"] > SAMPLE_S
    assert data["points"][0] == [0.0, 0, 0] and data["points"][-1][1] == 51 + 3 * MAX_POINTS
