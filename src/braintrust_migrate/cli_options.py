"""One CLI option per setting, added to any command that needs the settings.

Commands declare a `settings: Settings` parameter; the decorator replaces it by the
flags of every setting (plus --config), loads the layered settings, configures
logging, and passes the result in.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from braintrust_migrate.config import SETTING_FIELDS, Settings, allowed_text, flag_name, load_settings
from braintrust_migrate.logs import configure_logging


def _option_type(annotation: Any) -> Any:
    """The CLI-facing type of a setting: lists repeat, dates are parsed by the settings."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) in (list, dict):  # a mapping repeats as 'key=value' flags
        return list[str]
    if annotation in (int, float, Path, bool):
        return annotation
    if annotation is datetime:
        return str
    return str


def _default_text(info: FieldInfo) -> str | None:
    """The setting's default as a user would type it; None when there is none to show."""
    default = info.get_default(call_default_factory=True)
    if default is None or default in ([], {}, "") or default is PydanticUndefined:
        return None
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def _help_text(field: str, info: FieldInfo) -> str:
    """Description, what is allowed (choices, ranges) and the default: all a user needs at 80 columns."""
    parts = [str(info.description or "").rstrip(".") + "."]
    if not (get_origin(info.annotation) is None and info.annotation is bool):
        parts.append(f"Allowed: {allowed_text(field)}.")
    default = _default_text(info)
    if default is not None:
        parts.append(f"Default: {default}.")
    parts.append(f"Env: {field.upper()}.")
    return " ".join(parts)


def _metavar(annotation: Any) -> str | None:
    """A name for the value instead of click's TEXT."""
    base = _option_type(annotation)
    if get_origin(annotation) is Literal or any(get_origin(a) is Literal for a in get_args(annotation)):
        choices = next(get_args(a) for a in (annotation, *get_args(annotation)) if get_origin(a) is Literal)
        return "[" + "|".join(map(str, choices)) + "]"
    if base is bool:
        return None
    names = {int: "N", float: "SECONDS", Path: "PATH"}
    if base == list[str]:
        bare = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
        return "OLD=NEW" if get_origin(bare) is dict else "NAMES"
    inner = annotation
    if get_origin(inner) in (Union, types.UnionType):
        inner = next(arg for arg in get_args(inner) if arg is not type(None))
    if inner is datetime:
        return "DATE"
    return names.get(base, "TEXT") if base in names else "TEXT"


def _setting_parameters() -> list[inspect.Parameter]:
    params = []
    for field, info in SETTING_FIELDS.items():
        flag = flag_name(field)
        if not flag:
            continue
        names = [f"{flag}/--no-{flag[2:]}"] if info.annotation is bool else [flag]
        option = typer.Option(
            *names,
            help=_help_text(field, info),
            metavar=_metavar(info.annotation),
            show_default=False,
            rich_help_panel="Settings",
        )
        params.append(
            inspect.Parameter(
                field,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[_option_type(info.annotation) | None, option],
            )
        )
    config = typer.Option(
        "--config",
        help="A YAML or JSON file of settings (keys are the env var names).",
        rich_help_panel="Settings",
        dir_okay=False,
    )
    params.append(
        inspect.Parameter(
            "config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Path | None, config]
        )
    )
    return params


SETTING_PARAMETERS = _setting_parameters()
SETTING_NAMES = {param.name for param in SETTING_PARAMETERS}


def with_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(command)
    # Commands use postponed annotations: give Typer the evaluated ones.
    hints = typing.get_type_hints(command, include_extras=True)
    own = [
        param.replace(annotation=hints.get(name, param.annotation))
        for name, param in signature.parameters.items()
        if name != "settings"
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in list(kwargs) if name in SETTING_NAMES}
        config_file = flags.pop("config", None)
        settings = load_settings(flags, config_file=config_file)
        configure_logging(settings.log_level, settings.log_format)
        return command(settings=settings, **kwargs)

    params = own + SETTING_PARAMETERS
    wrapper.__signature__ = signature.replace(parameters=params, return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {param.name: param.annotation for param in params}
    return wrapper


def settings_from_flags(**flags: Any) -> Settings:
    """For library callers and tests: the same loading as the CLI."""
    config_file = flags.pop("config", None)
    return load_settings(flags, config_file=config_file)
