"""Copy a whole Braintrust organization into another one, from the CLI or from Python.

The public API (see README "Use from Python"): `migrate`, `plan` (the dry run), `validate`,
`verify` and `export`, each a coroutine with a blocking `*_sync` form; `make_settings`; the result
objects; `ConfigError`, `ApiError` and `MigrationInterrupted`. Names load on first use, so
that the console entry point (entry.py) imports nothing heavy before it owns Ctrl-C.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"
# Not `typing.TYPE_CHECKING`: importing typing would cost the entry point ~10 ms (type checkers
# know this idiom).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from braintrust_migrate.api import (
        MigrationInterrupted,
        export,
        export_sync,
        make_settings,
        migrate,
        migrate_sync,
        plan,
        plan_sync,
        validate,
        validate_sync,
        verify,
        verify_sync,
    )
    from braintrust_migrate.archive.export import ExportResult
    from braintrust_migrate.client import ApiError
    from braintrust_migrate.config import ConfigError, Settings
    from braintrust_migrate.results import (
        Check,
        ContainerParity,
        ContainerRows,
        Event,
        Failure,
        MigrationResult,
        Todo,
        TypeParity,
        ValidationResult,
        VerifyResult,
    )

__all__ = [
    "ApiError",
    "Check",
    "ConfigError",
    "ContainerParity",
    "ContainerRows",
    "Event",
    "ExportResult",
    "Failure",
    "MigrationInterrupted",
    "MigrationResult",
    "Settings",
    "Todo",
    "TypeParity",
    "ValidationResult",
    "VerifyResult",
    "__version__",
    "export",
    "export_sync",
    "make_settings",
    "migrate",
    "migrate_sync",
    "plan",
    "plan_sync",
    "validate",
    "validate_sync",
    "verify",
    "verify_sync",
]
_RESULTS = {"Check", "ContainerParity", "ContainerRows", "Event", "Failure", "MigrationResult", "Todo"}
_RESULTS |= {"TypeParity", "ValidationResult", "VerifyResult"}


def _home(name: str) -> str:
    if name in ("Settings", "ConfigError"):
        return "braintrust_migrate.config"
    if name == "ApiError":
        return "braintrust_migrate.client"
    if name == "ExportResult":
        return "braintrust_migrate.archive.export"
    return "braintrust_migrate.results" if name in _RESULTS else "braintrust_migrate.api"


def __getattr__(name: str) -> object:
    if name not in __all__ or name == "__version__":
        raise AttributeError(f"module 'braintrust_migrate' has no attribute {name!r}")
    value = getattr(importlib.import_module(_home(name)), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def _api_function(name: str) -> property:
    def get(module: types.ModuleType) -> object:
        return getattr(importlib.import_module("braintrust_migrate.api"), name)

    def put(module: types.ModuleType, value: object) -> None:
        pass  # the import system binding the submodule: it stays in sys.modules, where imports look

    return property(get, put, doc=f"braintrust_migrate.api.{name}")


class _Package(types.ModuleType):
    """`validate` and `verify` are the API's functions although submodules share their names:
    importing a submodule sets the package's attribute, and a property of the class wins."""

    validate = _api_function("validate")
    verify = _api_function("verify")


sys.modules[__name__].__class__ = _Package
