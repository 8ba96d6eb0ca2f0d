"""The package's loggers: silent in a host program that configures nothing.

Modules take their logger from `get_logger` instead of `structlog.get_logger`. Each call looks
at structlog first: once structlog is configured (the CLI does it in logs.configure_logging, a
host may do it itself) the call goes to structlog as configured. Until then it goes to the
standard library's logger of the same name as one `key=value` line. The package's root logger
carries only a NullHandler (the standard library's advice for libraries), so a host that sets
up nothing sees nothing, not even warnings, and a host that sets up `logging` sees our records
under `braintrust_migrate.*`. Unconfigured structlog would print every line on stdout.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

from braintrust_migrate.redact import scrub

ROOT = "braintrust_migrate"
logging.getLogger(ROOT).addHandler(logging.NullHandler())


def _scrubbed(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.pop("narrated", None)  # a CLI text-format flag (logs.py), meaningless here
    return {key: scrub(value) if isinstance(value, str) else value for key, value in event_dict.items()}


def _render(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> str:
    return scrub(structlog.processors.KeyValueRenderer(key_order=["event"])(_, __, dict(event_dict)))


class LibraryLogger:
    """A structlog-style logger (`log.info("event", key=value)`) that decides on every call
    where the line goes: configured structlog, or the standard library's logger `name`."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._stdlib: Any = None
        # A lazy proxy: it reads structlog's configuration when used, so one made now serves later.
        self._structlog: Any = structlog.get_logger(name)

    def _fallback(self) -> Any:
        if self._stdlib is None:
            self._stdlib = structlog.wrap_logger(
                logging.getLogger(self._name),
                processors=[
                    structlog.stdlib.filter_by_level,  # cheap: most records stop here
                    _scrubbed,
                    structlog.processors.format_exc_info,
                    _render,
                ],
                wrapper_class=structlog.stdlib.BoundLogger,
            )
        return self._stdlib

    def __getattr__(self, method: str) -> Any:
        target = self._structlog if structlog.is_configured() else self._fallback()
        return getattr(target, method)

    def __repr__(self) -> str:
        return f"LibraryLogger({self._name!r})"


def get_logger(name: str) -> Any:
    """The logger for module `name` (typed Any, like structlog's own proxies)."""
    return LibraryLogger(name)
