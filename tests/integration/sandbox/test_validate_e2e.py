"""`braintrust-migrate validate` end to end against a running sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))


def validate(url: str, source_key: str, dest_key: str, tmp_path: Path, *args: str, **env: str):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BT_", "MIGRATION_"))}
    environ.update(
        BT_SOURCE_URL=url, BT_DEST_URL=url, BT_SOURCE_API_KEY=source_key, BT_DEST_API_KEY=dest_key, **env
    )
    out = subprocess.run(
        [SCRIPT, "validate", "--json", "--state-dir", str(tmp_path / "state"), *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
    )
    return out.returncode, json.loads(out.stdout) if out.stdout.strip().startswith("{") else None, out.stderr


def checks(result: dict, side: str) -> dict:
    return {c["name"]: c for c in result["checks"] if c["side"] == side}


def test_good_keys_pass_every_check_with_a_write_probe(sandbox_server, sandbox_orgs, tmp_path):
    code, result, _ = validate(
        sandbox_server.url, sandbox_orgs.source.api_key, sandbox_orgs.dest.api_key, tmp_path, "--write-check"
    )
    assert code == 0, result
    assert result["orgs"]["source"]["org_name"] == sandbox_orgs.source.name
    assert checks(result, "dest")["write access"]["status"] == "pass"
    assert not any(
        p["name"].startswith("braintrust-migrate-write-check")
        for p in _projects(sandbox_server, sandbox_orgs.dest)
    )


def _projects(server, org):
    import httpx

    return httpx.get(f"{server.url}/v1/project", headers={"Authorization": f"Bearer {org.api_key}"}).json()[
        "objects"
    ]


def test_a_bad_key_fails_with_the_variable_to_check(sandbox_server, sandbox_orgs, tmp_path):
    code, result, _ = validate(
        sandbox_server.url, sandbox_orgs.source.api_key, "sk-not-a-real-key-123", tmp_path
    )
    assert code == 1
    check = checks(result, "dest")["api key"]
    assert check["status"] == "fail" and "BT_DEST_API_KEY" in check["fix"]
    assert "sk-not-a-real-key-123" not in json.dumps(result)


def test_a_key_with_two_orgs_needs_the_org_name(sandbox_server, sandbox_orgs, tmp_path):
    other = sandbox_server.create_org(f"second-{sandbox_orgs.source.name}")
    sandbox_server.grant_org(sandbox_orgs.source.api_key, other.name)
    code, result, _ = validate(
        sandbox_server.url, sandbox_orgs.source.api_key, sandbox_orgs.dest.api_key, tmp_path
    )
    assert code == 1
    assert "BT_SOURCE_ORG_NAME is not set" in checks(result, "source")["organization"]["detail"]
    code, result, _ = validate(
        sandbox_server.url, sandbox_orgs.source.api_key, sandbox_orgs.dest.api_key, tmp_path,
        BT_SOURCE_ORG_NAME=other.name,
    )  # fmt: skip
    assert code == 0, result
    assert result["orgs"]["source"]["org_id"] == other.id


def test_same_org_on_both_sides_is_refused(sandbox_server, sandbox_orgs, tmp_path):
    key = sandbox_orgs.source.api_key
    code, result, stderr = validate(sandbox_server.url, key, key, tmp_path)
    assert (code, result) == (2, None)
    assert "both act in org" in stderr
