"""Export folders: their layout (`layout`), the check run before reading one (`integrity`),
the `Source` one is read through (`folder`), `bt sync pull` folders (`btsync`), and the
exporter that writes them (`export`, `parts`)."""

from __future__ import annotations

from braintrust_migrate.archive.folder import FolderSource, open_folder, open_source
from braintrust_migrate.archive.integrity import ArchiveError, check

__all__ = ["ArchiveError", "FolderSource", "check", "open_folder", "open_source"]
