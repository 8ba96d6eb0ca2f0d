"""The sandbox's layout: no import cycle between its modules, and the tool stays apart from it.

Imports are read with ``ast`` (every import statement, including those inside functions and under
``TYPE_CHECKING``: a cycle hidden there is still a cycle for a reader). ``from pkg import name``
counts as an import of ``pkg.name`` when that is a module, else of ``pkg``. The implicit import of
a module's parent packages is not counted (every Python module has it).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import braintrust_migrate

TOOL = Path(braintrust_migrate.__file__).parent
SANDBOX = "braintrust_migrate.sandbox"
# The sandbox is a product of its own: only these modules of the tool may import it.
ALLOWED_IMPORTERS = {"braintrust_migrate.demo", "braintrust_migrate.cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(TOOL.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in TOOL.rglob("*.py")}


def imported_modules(name: str) -> set[str]:
    """Every module of the tool that module ``name`` imports."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES and m != name}


def in_sandbox(name: str) -> bool:
    return name == SANDBOX or name.startswith(SANDBOX + ".")


def sandbox_graph() -> dict[str, set[str]]:
    return {m: {d for d in imported_modules(m) if in_sandbox(d)} for m in MODULES if in_sandbox(m)}


def test_the_scan_sees_the_sandbox_and_its_known_edges() -> None:
    # Guards the scanner itself: an empty graph would pass the cycle test trivially.
    graph = sandbox_graph()
    assert len(graph) > 40
    assert f"{SANDBOX}.core.state" in graph[f"{SANDBOX}.events.logs3"]  # a TYPE_CHECKING import
    assert f"{SANDBOX}.seed.names" in graph[f"{SANDBOX}.seed.plan"]  # a relative import
    assert f"{SANDBOX}.faults" in graph[f"{SANDBOX}.server"]  # `from package import module`


def test_no_import_cycle_between_sandbox_modules() -> None:
    try:
        order = list(graphlib.TopologicalSorter(sandbox_graph()).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle between sandbox modules: {' -> '.join(exc.args[1])}") from None
    assert order


def room_of(name: str) -> str:
    """The sub-package (``core``, ``http``…) or top-level module (``server``…) a sandbox module is in."""
    return name.removeprefix(SANDBOX).lstrip(".").split(".")[0] or "__init__"


def test_no_import_cycle_between_sandbox_rooms() -> None:
    rooms: dict[str, set[str]] = {}
    for m, deps in sandbox_graph().items():
        rooms.setdefault(room_of(m), set()).update(room_of(d) for d in deps if room_of(d) != room_of(m))
    try:
        graphlib.TopologicalSorter(rooms).prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle between sandbox rooms: {' -> '.join(exc.args[1])}") from None


def test_core_imports_no_other_room_of_the_sandbox() -> None:
    core = f"{SANDBOX}.core"
    leaks = {
        (m, d)
        for m, deps in sandbox_graph().items()
        if m.startswith(core + ".")
        for d in deps
        if not d.startswith(core + ".")
    }
    assert not leaks


def test_only_demo_and_the_cli_import_the_sandbox() -> None:
    importers = {m for m in MODULES if not in_sandbox(m) and any(in_sandbox(d) for d in imported_modules(m))}
    assert importers <= ALLOWED_IMPORTERS, sorted(importers - ALLOWED_IMPORTERS)
