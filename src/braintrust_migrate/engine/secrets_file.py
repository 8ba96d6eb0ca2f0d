"""Secret values the API never returns, supplied by the user in a YAML file.

    ai_secrets:            # AI secret name -> value
      OPENAI_API_KEY: sk-...
    env_vars:              # env var name -> value, for every scope...
      SHARED_TOKEN: abc
      "My Project/TOKEN": x  # ...or "<project name>/<name>" for one project's variable

A flat mapping (name -> value) is read as the `ai_secrets` section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from braintrust_migrate.config import ConfigError
from braintrust_migrate.redact import register_value


@dataclass
class Secrets:
    ai_secrets: dict[str, str] = field(default_factory=dict)
    env_vars: dict[str, str] = field(default_factory=dict)

    def env_var(self, name: str, project: str | None) -> str | None:
        if project and f"{project}/{name}" in self.env_vars:
            return self.env_vars[f"{project}/{name}"]
        return self.env_vars.get(name)

    def __post_init__(self) -> None:
        # Registered as soon as they exist: a destination error quoting our request body,
        # or any log line, must never show them (see redact.py for the length rule).
        for value in (*self.ai_secrets.values(), *self.env_vars.values()):
            register_value(value)

    def __repr__(self) -> str:
        return f"Secrets(ai_secrets={sorted(self.ai_secrets)}, env_vars={sorted(self.env_vars)})"


def _section(path: Path, data: Any, name: str) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, str | int | float) for v in data.values()):
        raise ConfigError(f"--secrets-file {path}: '{name}' must map names to string values")
    return {str(k): str(v) for k, v in data.items()}


def load_secrets(path: Path | None) -> Secrets:
    if path is None:
        return Secrets()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--secrets-file {path}: cannot read the file ({exc.strerror or exc})") from None
    except yaml.YAMLError:
        # The parser's message may quote the file's content: a secret. Say only where.
        raise ConfigError(f"--secrets-file {path}: not valid YAML") from None
    if data is None:
        return Secrets()
    if not isinstance(data, dict):
        raise ConfigError(f"--secrets-file {path}: expected a mapping")
    if set(data) <= {"ai_secrets", "env_vars"}:
        return Secrets(
            _section(path, data.get("ai_secrets"), "ai_secrets"),
            _section(path, data.get("env_vars"), "env_vars"),
        )
    return Secrets(ai_secrets=_section(path, data, "ai_secrets"))
