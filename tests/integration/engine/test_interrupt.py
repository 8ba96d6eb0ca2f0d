"""Ctrl-C / SIGTERM mid-rows: exit 130 with one line, an exact report, and a resumed run
whose report counts the rows of the interrupted invocation too."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from braintrust_migrate.sandbox.faults import FaultSettings
from tests.integration.engine.cli_run import cli_env, dataset_row_count, run, seed_small, start

ROWS = 300
LINE = "interrupted — re-run the same command to resume"


def report_of(root: Path) -> tuple[dict, str]:
    (pair,) = root.iterdir()
    (folder,) = (pair / "runs").iterdir()
    data = json.loads((folder / "migration_report.json").read_text())
    return data, (folder / "migration_summary.txt").read_text()


def dataset_totals(report: dict) -> dict:
    return report["events"]["totals"]["dataset_rows"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_rows_then_resume(sandbox_server, sandbox_orgs, tmp_path, sig):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed_small(url, src, rows=ROWS)
    root = tmp_path / "state"
    env = cli_env(url, src, dst, root, MIGRATION_INSERT_BATCH_ROWS="5", MIGRATION_RESOURCES="datasets")
    slow = FaultSettings(latency_ms=60, methods=("POST",), include_paths=("/v1/dataset",))
    sandbox_server.set_faults(slow, org=dst.name)
    try:
        proc = start(env)
        deadline = time.monotonic() + 60
        while dataset_row_count(url, dst) < 20:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        sandbox_server.clear_faults()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == LINE

    held = dataset_row_count(url, dst)
    assert 20 <= held < ROWS, "the copy finished before the signal: nothing was tested"
    report, summary = report_of(root)
    assert report["complete"] is False and report["interrupted"] is True
    assert dataset_totals(report)["rows_written"] == held
    assert report["totals"]["datasets"] == {"created": 1}
    assert "interrupted" in summary

    resumed = run(env)
    assert resumed.returncode == 0, resumed.stderr
    assert dataset_row_count(url, dst) == ROWS
    report, summary = report_of(root)  # the same run: one run folder
    assert report["complete"] is True and report["interrupted"] is False
    assert report["resumed"] is True and report["invocations"] == 2
    assert dataset_totals(report)["rows_written"] == ROWS
    assert report["totals"]["datasets"] == {"created": 1}
    (line,) = [ln for ln in summary.splitlines() if ln.startswith("dataset_rows")]
    assert line.split()[1:4] == ["1", str(ROWS), str(ROWS)]  # containers, read, written
