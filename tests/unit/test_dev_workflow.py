"""The contributor workflow stays wired: pre-commit hooks, the dev extra, mypy's configuration."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

import braintrust_migrate

ROOT = Path(__file__).resolve().parents[2]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def hooks() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    found: dict[str, dict[str, Any]] = {}
    for repo in config["repos"]:
        # Local hooks only: a hook repository would be cloned from the network on first use.
        assert repo["repo"] == "local", repo["repo"]
        for hook in repo["hooks"]:
            found[hook["id"]] = hook
    return found


def test_pre_commit_runs_ruff_ruff_format_and_mypy_from_the_venv() -> None:
    found = hooks()
    assert set(found) >= {"ruff", "ruff-format", "mypy"}
    expected = {"ruff": ["ruff", "check"], "ruff-format": ["ruff", "format"], "mypy": ["mypy"]}
    for hook_id, command in expected.items():
        hook = found[hook_id]
        assert hook["language"] == "system", hook_id
        program, *args = hook["entry"].split()
        assert program == f".venv/bin/{command[0]}", hook_id
        assert args[: len(command) - 1] == command[1:], hook_id
        # The README's install puts the tool exactly there.
        assert (ROOT / program).is_file() or not (ROOT / ".venv").is_dir(), f"{program} missing"


def test_mypy_hook_checks_the_configured_package_not_just_changed_files() -> None:
    assert hooks()["mypy"]["pass_filenames"] is False
    assert "--fix" not in hooks()["ruff"]["entry"]


def test_dev_extra_has_the_workflow_tools() -> None:
    dev = pyproject()["project"]["optional-dependencies"]["dev"]
    names = {re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower() for req in dev}
    assert {"pytest-cov", "mypy", "ruff", "pre-commit"} <= names
    assert "braintrust-migrate[test]" in dev  # the test tools come along


def test_mypy_finds_the_package_from_the_repository_root() -> None:
    config = pyproject()["tool"]["mypy"]
    assert config["mypy_path"] == "src"
    (files,) = config["files"]
    assert (ROOT / files / "__init__.py").is_file()
    assert config["strict"] is True


def test_package_ships_its_type_hints() -> None:
    assert (Path(braintrust_migrate.__file__).parent / "py.typed").is_file()
