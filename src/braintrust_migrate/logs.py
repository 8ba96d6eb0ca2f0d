"""Structured logging to stderr with structlog, text or JSON, secrets scrubbed.

Text lines show control characters in values escaped (textsafe.printable): names from
either org reach the terminal, which must not obey an escape sequence hidden in one.
JSON lines need no such step, their encoder escapes control characters.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from braintrust_migrate.redact import scrub
from braintrust_migrate.textsafe import printable

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
_MULTILINE = ("exception", "stack")  # tracebacks: several lines by design
_STR_COLUMNS = ("event", "timestamp", "level", "logger", "logger_name")


def _scrub_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = scrub(value)
    return event_dict


def _printable_columns(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Keys, and the values the renderer shows with str() (event, timestamp, logger), as inert text."""
    out: dict[str, Any] = {}
    for key, value in event_dict.items():
        if isinstance(value, str) and (key in _MULTILINE or key in _STR_COLUMNS):
            value = printable(value, keep_lines=key in _MULTILINE)
        out[printable(key)] = value
    return out


class _TextRenderer(structlog.dev.ConsoleRenderer):
    """Every other value as the console renderer shows it (raw str or repr), control characters escaped."""

    def _repr(self, val: Any) -> str:
        return printable(super()._repr(val))


class _Scrubbed:
    """The final line scrubbed once more: nested values and tracebacks included."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, name: str, event_dict: dict[str, Any]) -> str:
        return scrub(self.renderer(logger, name, event_dict))


class _SafeFormatter(logging.Formatter):
    """Standard-library records (libraries' warnings): scrubbed and printable too."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(scrub(super().format(record)), keep_lines=True)


def configure_logging(level: str = "INFO", fmt: str = "text", stream: Any = None) -> None:
    """Route every structlog logger to `stream` (stderr) at `level` and above."""
    stream = stream or sys.stderr
    renderer: Any
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _scrub_secrets,
        structlog.processors.format_exc_info,
    ]
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        processors.append(_printable_columns)
        renderer = _TextRenderer(colors=stream.isatty() if hasattr(stream, "isatty") else False)
    structlog.configure(
        processors=[*processors, _Scrubbed(renderer)],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library follow the same level, quietly.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_SafeFormatter(logging.BASIC_FORMAT))
    logging.basicConfig(level=max(LEVELS[level], logging.WARNING), handlers=[handler], force=True)
