"""Small things a new user trips on: resource names, empty selections, secrets-file keys, URLs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from braintrust_migrate.config import ConfigError, Settings, load_settings
from braintrust_migrate.engine.secrets_file import Secrets, load_secrets, unknown_names_warning

SCRIPT = str(Path(sys.executable).with_name("braintrust-migrate"))
KEYS = {"BT_SOURCE_API_KEY": "sk-src-key-0001", "BT_DEST_API_KEY": "sk-dst-key-0002"}


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    base.update(env)
    base["COLUMNS"] = "200"
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=base, cwd=cwd, timeout=120)


def one_error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


@pytest.mark.parametrize("value", [",", "", " , "])
def test_empty_resources_flag_is_an_error(tmp_path: Path, value: str) -> None:
    line = one_error_line(run("migrate", "--resources", value, env=KEYS, cwd=tmp_path))
    assert "MIGRATION_RESOURCES" in line and "--resources" in line
    assert "names no resource type" in line


def test_resources_of_only_commas_in_the_environment_is_an_error(tmp_path: Path) -> None:
    line = one_error_line(run("migrate", env={**KEYS, "MIGRATION_RESOURCES": ","}, cwd=tmp_path))
    assert "MIGRATION_RESOURCES" in line


def test_unset_or_empty_resources_variable_still_means_all() -> None:
    assert load_settings({"migration_resources": ""}, env_file=None).migration_resources == []
    assert load_settings({}, env_file=None).migration_resources == []


def test_agents_and_logs_are_resource_names() -> None:
    chosen = load_settings({"migration_resources": ["agents,logs"]}, env_file=None).migration_resources
    assert chosen == ["functions", "logs"]  # agents are graph functions, migrated within `functions`
    both = load_settings({"migration_resources": "functions,agents"}, env_file=None).migration_resources
    assert both == ["functions"]


def test_resources_agents_migrates_the_graph_function(sandbox_server, sandbox_orgs, tmp_path: Path) -> None:
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    code = {"type": "inline", "runtime_context": {"runtime": "python", "version": "3.11"}, "code": "x = 1\n"}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {src.api_key}"}) as client:
        project = client.post("/v1/project", json={"name": "Agents project"}).json()
        leaf = client.post(
            "/v1/function",
            json={
                "project_id": project["id"],
                "name": "leaf",
                "slug": "leaf",
                "function_data": {"type": "code", "data": code},
            },
        ).json()
        nodes = {
            "input": {"type": "input"},
            "step": {"type": "function", "function": {"function_id": leaf["id"]}},
            "output": {"type": "output"},
        }
        agent = client.post(
            "/v1/function",
            json={
                "project_id": project["id"],
                "name": "agent",
                "slug": "agent",
                "function_type": "task",
                "function_data": {"type": "graph", "nodes": nodes, "edges": {}},
            },
        )
        assert agent.status_code == 200, agent.text
    env = {
        "BT_SOURCE_URL": url,
        "BT_DEST_URL": url,
        "BT_SOURCE_API_KEY": src.api_key,
        "BT_DEST_API_KEY": dst.api_key,
        "LOG_LEVEL": "WARNING",
    }
    out = run(
        "migrate", "--resources", "agents", "--state-dir", str(tmp_path / "state"), env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # Judged by the destination itself, over plain HTTP.
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {dst.api_key}"}) as client:
        objects = client.get("/v1/function", params={"project_name": "Agents project"}).json()["objects"]
    by_slug = {fn["slug"]: fn for fn in objects}
    assert set(by_slug) == {"leaf", "agent"}
    graph = by_slug["agent"]["function_data"]
    assert graph["type"] == "graph"
    assert graph["nodes"]["step"]["function"]["function_id"] == by_slug["leaf"]["id"] != leaf["id"]


@pytest.mark.parametrize(
    ("var", "flag", "value"),
    [
        ("BT_SOURCE_URL", "--source-url", "https://api.braintrust.dev/v1/"),
        ("BT_SOURCE_URL", "--source-url", "https://api.braintrust.dev/v1"),
        ("BT_DEST_URL", "--dest-url", "http://127.0.0.1:8000/v1"),
        ("BT_DEST_URL", "--dest-url", "https://braintrust.example.com/v1/organization"),
    ],
)
def test_url_with_v1_names_the_setting(tmp_path: Path, var: str, flag: str, value: str) -> None:
    expected = f"error: {var} should be the API root (e.g. https://api.braintrust.dev), not {value}"
    assert one_error_line(run("validate", env={**KEYS, var: value}, cwd=tmp_path)) == expected
    assert one_error_line(run("validate", flag, value, env=KEYS, cwd=tmp_path)) == expected


def test_url_path_rules() -> None:
    with pytest.raises(
        ConfigError, match=r"^BT_DEST_URL should be the API root .*not https://api.braintrust.dev/x$"
    ):
        load_settings({"bt_dest_url": "https://api.braintrust.dev/x"}, env_file=None)
    with pytest.raises(ConfigError) as info:  # credentials in the URL are not repeated
        load_settings({"bt_dest_url": "https://user:hunter22@bt.example.com/v1"}, env_file=None)
    assert "hunter22" not in str(info.value) and str(info.value).endswith("not https://bt.example.com/v1")
    # A self-hosted data plane may sit under a path prefix; the root itself is fine with or without "/".
    prefixed = load_settings({"bt_dest_url": "https://gw.example.com/braintrust/"}, env_file=None)
    assert prefixed.bt_dest_url == "https://gw.example.com/braintrust"
    assert load_settings({"bt_dest_url": "https://api.braintrust.dev/"}, env_file=None).bt_dest_url == (
        "https://api.braintrust.dev"
    )


def test_misspelt_secrets_file_key_is_named(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("ai_secret:\n  OPENAI_API_KEY: sk-never-shown-123\n")
    line = one_error_line(run("migrate", "--secrets-file", str(secrets), env=KEYS, cwd=tmp_path))
    assert str(secrets) in line
    assert "unknown top-level key 'ai_secret'" in line and "did you mean 'ai_secrets'" in line
    assert "allowed: ai_secrets, env_vars" in line
    assert "sk-never-shown-123" not in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ai_secrets:\n  A: sk-aaaa1\nenvvars:\n  B: x\n", "unknown top-level key 'envvars'"),
        ("ai_secrets:\n  A: sk-aaaa1\nOTHER: sk-bbbb2\n", "unknown top-level key 'OTHER'"),
        ("env_var:\n", "unknown top-level key 'env_var' (did you mean 'env_vars'?)"),
        ("ai_secrets:\n  A:\n", "'ai_secrets.A' must be a string value"),
        ("OPENAI:\n", "'OPENAI' must be a string value"),  # flat file, a secret without a value
        ("OPENAI: yes\n", "'OPENAI' must be a string value (quote it)"),
    ],
)
def test_secrets_file_shapes_are_named(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_secrets(path)
    message = str(info.value)
    assert message.startswith(f"--secrets-file {path}: ") and expected in message
    assert "sk-aaaa1" not in message and "sk-bbbb2" not in message


def test_secrets_file_good_shapes_still_load(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text('ai_secrets:\n  A: sk-1\nenv_vars:\n  T: "7"\n  "P/T": x\n')
    loaded = load_secrets(path)
    assert loaded.ai_secrets == {"A": "sk-1"} and loaded.env_vars == {"T": "7", "P/T": "x"}
    path.write_text("A: sk-1\nB: sk-2\n")
    assert load_secrets(path).ai_secrets == {"A": "sk-1", "B": "sk-2"}


def test_unknown_secret_names() -> None:
    secrets = Secrets(
        ai_secrets={"OPENAI_API_KEY": "sk-x1", "OPENAI_APIKEY": "sk-x2"},
        env_vars={"SENTRY_DSN": "d", "Web/TOKEN": "t", "Gone/TOKEN": "g", "NOPE": "n"},
    )
    known_envs = ["SENTRY_DSN", "TOKEN", "Web/TOKEN"]
    assert secrets.unknown_names(["OPENAI_API_KEY"], known_envs) == [
        "ai_secrets.OPENAI_APIKEY",
        "env_vars.Gone/TOKEN",
        "env_vars.NOPE",
    ]
    # A section whose type is not selected is not checked.
    assert secrets.unknown_names(None, known_envs) == ["env_vars.Gone/TOKEN", "env_vars.NOPE"]
    assert secrets.unknown_names(["OPENAI_API_KEY", "OPENAI_APIKEY"], None) == []
    assert unknown_names_warning([]) is None
    warning = unknown_names_warning([f"ai_secrets.S{i}" for i in range(7)]) or ""
    assert warning.startswith("7 name(s) in the secrets file match nothing in the source")
    assert "ai_secrets.S4 and 2 more" in warning and "sk-x" not in warning


def test_blank_org_name_means_unset() -> None:
    assert load_settings({"bt_source_org_name": "  "}, env_file=None).bt_source_org_name is None
