"""Structured logging to stderr with structlog, text or JSON, secrets scrubbed.

Text lines show control characters in values escaped (textsafe.printable): names from
either org reach the terminal, which must not obey an escape sequence hidden in one.
JSON lines need no such step, their encoder escapes control characters.

Lines meant for stderr print through the progress display's Console, so while a live display
is shown they appear above it instead of through it. Narrated lines (engine/narrate.py) carry
their facts as fields: JSON shows them, text shows only the sentence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from rich.text import Text

from braintrust_migrate.engine import progress
from braintrust_migrate.redact import scrub
from braintrust_migrate.textsafe import printable

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
_MULTILINE = ("exception", "stack")  # tracebacks: several lines by design
_STR_COLUMNS = ("event", "timestamp", "level", "logger", "logger_name")
NARRATED = "narrated"  # a key narrate.py sets: the sentence says it all in text format


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


def _sentence_only(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    if event_dict.pop(NARRATED, False):
        keep = ("event", "timestamp", "level")
        return {key: value for key, value in event_dict.items() if key in keep}
    return event_dict


def _drop_flag(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.pop(NARRATED, None)
    return event_dict


class _ConsoleLogger:
    """Writes rendered lines through the shared stderr Console (above any live display)."""

    def __init__(self, ansi: bool) -> None:
        self.ansi = ansi

    def msg(self, message: str) -> None:
        text = Text.from_ansi(message) if self.ansi else Text(message)
        progress.console.print(text, soft_wrap=True, highlight=False, markup=False, emoji=False)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _ConsoleLoggerFactory:
    def __init__(self, ansi: bool) -> None:
        self.ansi = ansi

    def __call__(self, *args: Any) -> _ConsoleLogger:
        return _ConsoleLogger(self.ansi)


class _ConsoleStream:
    """A text stream for standard-library handlers that prints through the shared Console."""

    def write(self, data: str) -> int:
        if data.strip():
            progress.console.print(Text(data.rstrip("\n")), soft_wrap=True, highlight=False)
        return len(data)

    def flush(self) -> None:
        pass


class _TextRenderer(structlog.dev.ConsoleRenderer):
    """Every other value as the console renderer shows it (raw str or repr), control characters escaped."""

    def _repr(self, val: Any) -> str:
        return printable(super()._repr(val))


class _Scrubbed:
    """The final line scrubbed once more: nested values and tracebacks included."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
        return scrub(self.renderer(logger, name, event_dict))


class _SafeFormatter(logging.Formatter):
    """Standard-library records (libraries' warnings): scrubbed and printable too."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(scrub(super().format(record)), keep_lines=True)


def configure_logging(level: str = "INFO", fmt: str = "text", stream: Any = None) -> None:
    """Route every structlog logger to `stream` (default: stderr, through the shared Console)."""
    shared = stream is None
    progress.set_line_format(fmt)
    stream = stream or sys.stderr
    renderer: Any
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _scrub_secrets,
        structlog.processors.format_exc_info,
    ]
    colors = False
    if fmt == "json":
        processors.append(_drop_flag)
        renderer = structlog.processors.JSONRenderer()
    else:
        colors = progress.console.is_terminal if shared else bool(getattr(stream, "isatty", bool)())
        processors += [_sentence_only, _printable_columns]
        renderer = _TextRenderer(colors=colors)
    factory: Any = _ConsoleLoggerFactory(colors) if shared else structlog.PrintLoggerFactory(file=stream)
    structlog.configure(
        processors=[*processors, _Scrubbed(renderer)],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library follow the same level, quietly.
    handler = logging.StreamHandler(_ConsoleStream() if shared else stream)
    handler.setFormatter(_SafeFormatter(logging.BASIC_FORMAT))
    logging.basicConfig(level=max(LEVELS[level], logging.WARNING), handlers=[handler], force=True)
