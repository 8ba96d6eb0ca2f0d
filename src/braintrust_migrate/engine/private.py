"""Files and folders the tool creates hold org metadata, names, emails and error bodies:
folders 0700, files 0600, whatever the umask. The one place those modes are applied."""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE, DIR_MODE = 0o600, 0o700


def make_dirs(folder: Path) -> None:
    """`folder` and its missing parents as 0700; folders that exist are left alone. Raises OSError."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for path in reversed(missing):
        path.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(path, DIR_MODE)
    if not folder.is_dir():
        raise NotADirectoryError(20, "not a directory", str(folder))


def private_file(path: Path) -> None:
    """`path` created if missing, and 0600."""
    if not path.exists():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    os.chmod(path, FILE_MODE)
