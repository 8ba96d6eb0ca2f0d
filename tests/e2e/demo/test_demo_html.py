"""`demo` writes the HTML reports beside the JSON ones and names them in its output."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.integration.engine import cli_run
from tests.integration.engine.cli_run import seed_small
from tests.unit.core.html_page import Page

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))


def test_demo_writes_and_names_both_html_reports(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BT_", "MIGRATION_", "LOG_"))}
    out = subprocess.run(
        [SCRIPT, "demo"], capture_output=True, text=True, cwd=tmp_path, env=environ, timeout=120
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    named = [line.split("HTML report: ", 1)[1] for line in out.stdout.splitlines() if "HTML report: " in line]
    pages = [Path(p) if Path(p).is_absolute() else tmp_path / p for p in named]
    assert [p.name for p in pages] == ["migration_report.html", "verify_report.html"]
    for page in pages:
        assert stat.S_IMODE(page.stat().st_mode) == 0o600
    report = json.loads(pages[0].with_suffix(".json").read_text())
    migration = Page(pages[0].read_text(encoding="utf-8"))
    per_type = {row["type"]: row for row in migration.table_with("type", "created")}
    assert set(per_type) == set(report["totals"])
    for name, counts in report["totals"].items():
        assert per_type[name]["created"] == f"{counts.get('created', 0):,}"
    containers = migration.table_with("row type", "project", "container", "status")
    assert len(containers) == len(report["events"]["containers"]) > 0
    assert "polyline" in migration.tags  # the demo writes rows: the throughput chart is drawn
    assert "script" not in migration.tags and not [a for a in migration.attrs if a[1] in ("src", "href")]
    assert migration.facts["exit code"] == "0: no failures"
    verify = Page(pages[1].read_text(encoding="utf-8"))
    assert verify.facts["exit code"] == "0: parity" and "PARITY" in verify.text


def test_migrate_dry_run_names_its_html_plan(sandbox_server, sandbox_orgs, tmp_path: Path) -> None:
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed_small(url, src, rows=12)
    done = cli_run.run(cli_run.cli_env(url, src, dst, tmp_path), "--dry-run")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    paths = dict(
        line.split(": ", 1) for line in done.stdout.splitlines() if line.startswith(("report:", "html:"))
    )
    page_path = Path(paths["html"])
    assert page_path == Path(paths["report"]).with_name("migration_report.html")
    page = Page(page_path.read_text(encoding="utf-8"))
    assert page.facts["dry run"] == "yes" and page.facts["exit code"] == "0: dry run, nothing written"
    planned = {row["container"]: row for row in page.table_with("row type", "project", "container", "rows")}
    assert (planned["state-d"]["rows"], planned["state-d"]["to copy"]) == ("12", "12")
