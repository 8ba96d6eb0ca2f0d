"""The README's "Rehearsing a migration locally" block, run as written: a user who copies it
into a shell (venv activated, as the README says) ends at exit 0 with verify at parity.

The block is read from README.md as text and run with `bash -e` in an empty folder. One
substitution only: the port `8000` becomes a free port, so that the test never collides with
something already listening there (or with a parallel test run)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### Rehearsing a migration locally"
VENV_BIN = Path(sys.executable).parent


def rehearsal_block(readme: Path = README) -> str:
    text = readme.read_text(encoding="utf-8")
    section = text.split(HEADING, 1)[1].split("\n#", 1)[0]
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found, f"no ```bash block under {HEADING!r} in {readme}"
    return found.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_group(pgid: int) -> None:
    """SIGTERM the process group (the server stops cleanly), SIGKILL whatever outlives 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.1)
            os.killpg(pgid, 0)  # raises once the group is gone
        os.killpg(pgid, signal.SIGKILL)


def run_block(block: str, folder: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`bash -e` on the block in `folder`; its background server is stopped afterwards."""
    script = folder / "rehearsal.sh"
    script.write_text(block.replace("8000", str(_free_port())), encoding="utf-8")
    # A fresh shell: the venv first on PATH (activated), nothing else inherited from the test run.
    env = {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(folder)}
    env |= {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")}
    # Files, not pipes: the background server keeps its copy of them open after bash exits.
    out_path, err_path = folder / "stdout.txt", folder / "stderr.txt"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            ["bash", "-e", str(script)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: the `serve &` server is stopped with it
        )
        try:
            proc.wait(timeout=timeout)
        finally:
            _stop_group(proc.pid)
            proc.wait()
    out_text, err_text = out_path.read_text(encoding="utf-8"), err_path.read_text(encoding="utf-8")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out_text, err_text)


def test_readme_block_handles_the_background_server_starting() -> None:
    # `serve ... &` returns at once; the next line must not race the server's start-up.
    block = rehearsal_block()
    lines = [line for line in block.splitlines() if line.strip()]
    serve = next(i for i, line in enumerate(lines) if "sandbox serve" in line)
    assert lines[serve].rstrip().endswith("&")
    assert "sandbox seed" in lines[serve + 1] and "--wait" in lines[serve + 1], lines[serve + 1]


def test_readme_rehearsal_block_ends_at_parity(tmp_path: Path) -> None:
    proc = run_block(rehearsal_block(), tmp_path)

    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "all checks passed" in proc.stdout
    assert "braintrust-migrate verify: PARITY" in proc.stdout, proc.stdout[-4000:]
    assert "DIFFERENCES FOUND" not in proc.stdout
    # What migrate could not do is listed by verify as expected, with its to-do.
    assert "Expected differences" in proc.stdout
