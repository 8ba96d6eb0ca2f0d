"""What the `export` command and `verify --export` run, below the CLI and the Python API."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from braintrust_migrate.archive.against import compare_export
from braintrust_migrate.archive.against import summary_text as export_check_text
from braintrust_migrate.archive.export import ExportResult, export_org
from braintrust_migrate.archive.folder import FolderSource
from braintrust_migrate.config import ConfigError, Settings
from braintrust_migrate.engine.report import write_atomic
from braintrust_migrate.engine.statedir import make_private_dirs
from braintrust_migrate.source.live import open_live
from braintrust_migrate.textsafe import printable


async def run_export(
    settings: Settings, to: Path, *, compression: str = "none", fresh: bool = False
) -> ExportResult:
    """The export behind `export --to DIR` (`export_org` refuses an unknown compression)."""
    if (
        settings.migration_project_map
        or settings.migration_project_map_file
        or settings.migration_project_prefix
    ):
        # An export keeps the source's names: renaming is the import's job.
        raise ConfigError(
            "--project-map/--project-map-file/--project-prefix: an export keeps the source's project names; "
            "apply renames at import (braintrust-migrate import --project-map ...)"
        )
    return await export_org(settings, to, compression=compression, fresh=fresh)  # type: ignore[arg-type]


def export_summary(result: ExportResult) -> str:
    """What an export wrote, in a few lines."""
    m = result.manifest
    rows = sum(part.rows for c in m.containers for part in c.parts)
    stored = sum(entry.bytes for entry in m.files.values())
    lines = [
        f"exported org {m.source_org.get('name')!r} to {printable(str(result.path))}",
        f"  objects: {sum(m.objects.values())} ({len(m.objects)} kinds)",
        f"  rows: {rows} in {len(m.containers)} containers"
        + (f", {sum(len(c.versions) for c in m.containers)} pinned dataset versions" if m.containers else ""),
        f"  attachments: {len(m.attachments)}",
        f"  files: {len(m.files)}, {stored} bytes ({m.compression})",
    ]
    if m.needs_values:
        lines.append(
            f"  {len(m.needs_values)} secrets hold no value: give them with --secrets-file on import"
        )
    lines += [f"  failed: {printable(failure)}" for failure in result.failures]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ExportCheck:
    ok: bool
    report: dict[str, Any]
    summary: str
    path: Path


async def run_export_check(settings: Settings, folder: FolderSource) -> ExportCheck:
    """`verify --export DIR`: the export against its live org; the report goes under the state dir."""
    async with open_live(settings, "source") as source:
        report = await compare_export(settings, source, folder)
    out = settings.migration_state_dir / "export-checks" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    make_private_dirs(out)
    path = out / "verify_report.json"
    write_atomic(path, orjson.dumps(report, option=orjson.OPT_INDENT_2))
    summary = export_check_text(report)
    write_atomic(out / "verify_summary.txt", summary.encode())
    return ExportCheck(report["ok"], report, summary, path)
