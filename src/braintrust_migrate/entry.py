"""The console entry point, kept free of heavy imports so that it owns Ctrl-C and SIGTERM
from the first instant: an interrupt at any moment, even while the CLI is still being
imported or while the process winds down, ends in one line and exit code 130."""

from __future__ import annotations

import signal
import sys
from types import FrameType

INTERRUPTED = "interrupted — re-run the same command to resume"
EXIT_INTERRUPTED = 130


class Interrupted(BaseException):
    """Raised by the signal handler outside the event loop. A BaseException that is not a
    KeyboardInterrupt, so that no library turns it into its own exit code (click: 'Aborted!', 1)."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def install_interrupt_handlers() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupted)


def _ignore_interrupts() -> None:
    # Python's shutdown puts its own handlers back to the default (death by signal, exit -2)
    # but leaves ignored ones alone: once the work is over, a late Ctrl-C changes nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main() -> None:
    install_interrupt_handlers()
    try:
        from braintrust_migrate.heap import map_large_buffers

        map_large_buffers()
        from braintrust_migrate.cli import main as cli_main

        cli_main()
    except Interrupted:
        # Nothing is lost: every state change is committed as it happens.
        _ignore_interrupts()
        sys.stderr.write(INTERRUPTED + "\n")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        _ignore_interrupts()
