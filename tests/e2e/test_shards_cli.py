"""`migrate --shard` as a user types it: the README's shell loop (objects, N shards with `&` and
`wait`, the finishing run) leaves the destination equal to the source; bad values and combinations
are one line, exit 2, nothing written; the Kubernetes manifest runs the same command per index."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from braintrust_migrate.sandbox.testing import OrgPair
from tests.integration.engine.cli_run import SCRIPT, cli_env, run, seed_small
from tests.integration.engine.harness import list_all
from tests.oracle import compare_orgs

ROOT = Path(__file__).resolve().parents[2]


def readme_loop() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Scaling out", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's Scaling out section has no shell example"
    return block.group(1)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    return lines[0]


def test_the_readme_loop_migrates_exactly(sandbox_server, sandbox_orgs: OrgPair, tmp_path: Path) -> None:
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed_small(url, src, rows=120)
    env = cli_env(url, src, dst, tmp_path / "state")
    env["PATH"] = f"{Path(SCRIPT).parent}:{env['PATH']}"
    script = readme_loop().replace("N=4", "N=2")
    done = subprocess.run(["bash", "-euc", script], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("shard-*.log")) == ["shard-0.log", "shard-1.log"]
    compare_orgs(url, src.api_key, dst.api_key).assert_equal()


@pytest.mark.parametrize("value", ["3/2", "x", "0/0"])
def test_bad_shard_values_exit_2_in_one_line(sandbox_server, sandbox_orgs: OrgPair, tmp_path, value) -> None:
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    env = cli_env(url, src, dst, tmp_path / "state")
    line = one_error_line(run(env, "--shard", value))
    assert "MIGRATION_SHARD" in line and repr(value) in line
    line = one_error_line(run({**env, "MIGRATION_SHARD": value}))
    assert "MIGRATION_SHARD" in line
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("extra", [["--follow"], ["--sync-deletes"], ["--dry-run"]])
def test_a_shard_refuses_run_wide_options(sandbox_server, sandbox_orgs: OrgPair, tmp_path, extra) -> None:
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    seed_small(url, src, rows=5)
    line = one_error_line(run(cli_env(url, src, dst, tmp_path / "state"), "--shard", "0/2", *extra))
    assert "--shard" in line
    assert list_all(url, dst, "/v1/project") == []


def test_the_kubernetes_job_runs_one_shard_per_index() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s-indexed-job.yaml").read_text(encoding="utf-8")))
    job = next(d for d in docs if d["kind"] == "Job")
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    shards = next(e["value"] for e in container["env"] if e["name"] == "SHARDS")
    assert spec["completionMode"] == "Indexed" and spec["completions"] == int(shards)
    command = " ".join(container["command"] + container["args"])
    assert '--shard "${JOB_COMPLETION_INDEX}/${SHARDS}"' in command
    assert "API_KEY" not in command and all("API_KEY" not in e["name"] for e in container["env"])
