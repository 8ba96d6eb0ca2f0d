"""Project renames: what a source project is called in the destination.

One value, built from the settings (--project-map, --project-map-file, --project-prefix),
used wherever a project name is written or matched: the body of a project, references
that name a project (refs.NAME_REFERENCES), identity lookups, verify and the oracle's
expectations. A map entry wins over the prefix; a name in neither keeps its name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from braintrust_migrate.config import ConfigError, Settings, parse_rename_pairs


@dataclass(frozen=True)
class ProjectNames:
    mapping: dict[str, str] = field(default_factory=dict)
    prefix: str = ""

    @property
    def active(self) -> bool:
        return bool(self.mapping or self.prefix)

    def dest(self, name: str) -> str:
        """The destination name of the source project `name`."""
        if name in self.mapping:
            return self.mapping[name]
        return self.prefix + name

    def renames(self, name: str) -> bool:
        return self.dest(name) != name

    def fingerprint(self) -> str:
        """Stable across runs; differs when any rename differs (kept in the state's meta)."""
        text = json.dumps({"map": self.mapping, "prefix": self.prefix}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def project_names(settings: Settings) -> ProjectNames:
    """The renames the settings ask for; a map file that cannot be read is a ConfigError naming it."""
    mapping: dict[str, str] = {}
    if settings.migration_project_map_file is not None:
        mapping.update(read_map_file(settings.migration_project_map_file))
    mapping.update(settings.migration_project_map)
    return ProjectNames(mapping, settings.migration_project_prefix)


def read_map_file(path: Path) -> dict[str, str]:
    where = f"MIGRATION_PROJECT_MAP_FILE (--project-map-file) {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the file ({exc.strerror or exc})") from None
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"{where}: not valid {path.suffix.lstrip('.')}: {first}") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip() for k, v in data.items()
        ):
            raise ConfigError(f"{where}: expected a mapping of old project names to new ones")
        return {k.strip(): v.strip() for k, v in data.items()}
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    try:
        return parse_rename_pairs(lines)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
