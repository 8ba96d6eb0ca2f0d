"""The README's first command: the installed console script, as a newcomer runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))


def test_demo_runs_to_parity(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BT_", "MIGRATION_", "LOG_"))}
    out = subprocess.run(
        [SCRIPT, "demo"], capture_output=True, text=True, cwd=tmp_path, env=environ, timeout=120
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "5/5 verify: PARITY" in out.stdout
    reports = list(tmp_path.glob("braintrust-migrate-demo/*/runs/*/migration_report.json"))
    verify_reports = list(tmp_path.glob("braintrust-migrate-demo/*/runs/*/verify_report.json"))
    assert len(reports) == 1 and len(verify_reports) == 1
    report = json.loads(reports[0].read_text())
    assert report["failed"] == 0
    assert sum(t.get("created", 0) for t in report["totals"].values()) > 100
    assert json.loads(verify_reports[0].read_text())["ok"] is True


def test_demo_scales_rows(tmp_path: Path) -> None:
    out = subprocess.run(
        [SCRIPT, "demo", "--rows", "1500"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1500 event rows" in " ".join(out.stdout.split())
    report = json.loads(
        next(tmp_path.glob("braintrust-migrate-demo/*/runs/*/migration_report.json")).read_text()
    )
    assert sum(t["rows_written"] for t in report["events"]["totals"].values()) > 1000


def test_demo_rejects_an_unknown_profile(tmp_path: Path) -> None:
    out = subprocess.run(
        [SCRIPT, "demo", "--profile", "huge"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: --profile 'huge'")
