"""Secret values the API never returns, supplied by the user in a YAML file.

    ai_secrets:            # AI secret name -> value
      OPENAI_API_KEY: sk-...
    env_vars:              # env var name -> value, for every scope...
      SHARED_TOKEN: abc
      "My Project/TOKEN": x  # ...or "<project name>/<name>" for one project's variable

A flat mapping (name -> value) is read as the `ai_secrets` section. A file with any
section-like entry (a known section name, or a value that is a mapping or empty) is read as
sections, and then every top-level key must be a known section: a misspelt `ai_secret:`
is named, not read as a secret called "ai_secret".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from braintrust_migrate.config import ConfigError
from braintrust_migrate.engine.resources import RESOURCE_TYPES
from braintrust_migrate.redact import register_value

# The file's sections are the secrets of the type table (AI secrets first: a flat file is theirs).
SECTIONS = tuple(dict.fromkeys(rt.secret.section for rt in RESOURCE_TYPES if rt.secret))


@dataclass
class Secrets:
    ai_secrets: dict[str, str] = field(default_factory=dict)
    env_vars: dict[str, str] = field(default_factory=dict)

    def value(self, section: str, name: str, project: str | None) -> str | None:
        """A section's value for `name`; `<project>/<name>` first for an object inside a project."""
        values: dict[str, str] = getattr(self, section)
        if project and f"{project}/{name}" in values:
            return values[f"{project}/{name}"]
        return values.get(name)

    def unknown_names(
        self, ai_secret_names: Iterable[str] | None, env_var_names: Iterable[str] | None
    ) -> list[str]:
        """Names in this file that match nothing in the source, as `section.name`, sorted.

        `env_var_names` holds plain names and `<project name>/<name>` for project-scoped
        variables; a file key `P/N` matches only the latter, a plain key matches the former.
        None for a section means its resource type is not selected: not checked.
        """
        return self.unknown_in({"ai_secrets": ai_secret_names, "env_vars": env_var_names})

    def unknown_in(self, known_by_section: Mapping[str, Iterable[str] | None]) -> list[str]:
        """`unknown_names` for any sections: section -> the names the source has (None: not checked)."""
        unknown: list[str] = []
        for section, known in known_by_section.items():
            names: dict[str, str] = getattr(self, section)
            if known is None:
                continue
            present = set(known)
            unknown += [f"{section}.{name}" for name in sorted(names) if name not in present]
        return unknown

    def __post_init__(self) -> None:
        # Registered as soon as they exist: a destination error quoting our request body,
        # or any log line, must never show them (see redact.py for the length rule).
        for value in (*self.ai_secrets.values(), *self.env_vars.values()):
            register_value(value)

    def __repr__(self) -> str:
        return f"Secrets(ai_secrets={sorted(self.ai_secrets)}, env_vars={sorted(self.env_vars)})"


def unknown_names_warning(unknown: list[str], shown: int = 5) -> str | None:
    """One log line for `Secrets.unknown_names`, or None when every name matched."""
    if not unknown:
        return None
    more = f" and {len(unknown) - shown} more" if len(unknown) > shown else ""
    return (
        f"{len(unknown)} name(s) in the secrets file match nothing in the source "
        f"(typo, or not selected?): {', '.join(unknown[:shown])}{more}"
    )


def _values(path: Path, data: Any, name: str) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--secrets-file {path}: '{name}' must map names to string values")
    for key, value in data.items():
        # Bool and None are YAML's reading of yes/no/empty: never a secret value.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            where = f"{name}.{key}" if name in SECTIONS else str(key)
            raise ConfigError(f"--secrets-file {path}: '{where}' must be a string value (quote it)")
    return {str(k): str(v) for k, v in data.items()}


def _close_section(key: Any) -> str | None:
    close = difflib.get_close_matches(str(key).lower(), SECTIONS, n=1, cutoff=0.6)
    return close[0] if close else None


def _is_sectioned(data: dict[Any, Any]) -> bool:
    # An empty value is an empty section only when its key looks like one (`env_var:`);
    # elsewhere it is a flat secret without a value, reported as such.
    return any(
        key in SECTIONS or isinstance(value, dict | list) or (value is None and _close_section(key))
        for key, value in data.items()
    )


def _check_sections(path: Path, data: dict[Any, Any]) -> None:
    for key in data:
        if key not in SECTIONS:
            close = _close_section(key)
            hint = f" (did you mean '{close}'?)" if close else ""
            raise ConfigError(
                f"--secrets-file {path}: unknown top-level key {str(key)!r}{hint}; "
                f"allowed: {', '.join(SECTIONS)} (or a flat mapping of AI secret names to values)"
            )


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
    if _is_sectioned(data):
        _check_sections(path, data)
        return Secrets(**{section: _values(path, data.get(section), section) for section in SECTIONS})
    return Secrets(**{SECTIONS[0]: _values(path, data, "flat")})
