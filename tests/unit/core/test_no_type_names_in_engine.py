"""The engine decides nothing by type name: every type and stream name lives in the two tables.

A string naming a resource type, a kind or a stream is allowed outside `resources.py` and `refs.py`
only as a field name of a report or a body (a dict key, a subscript, `.get("project")`)."""

from __future__ import annotations

import ast
from pathlib import Path

import braintrust_migrate
from braintrust_migrate.engine.resources import EVENT_STREAMS, RESOURCE_TYPES

PACKAGE = Path(braintrust_migrate.__file__).parent
TABLES = {"engine/resources.py", "engine/refs.py"}
# Presentation only: their column headers ("project", "type") are words, not decisions.
PAGES = {"engine/report_html.py", "verify/report_html.py"}
SCANNED = ("engine", "verify", "validate.py", "catalog.py")
NAMES = {rt.name for rt in RESOURCE_TYPES} | {rt.kind for rt in RESOURCE_TYPES}
NAMES |= {name for s in EVENT_STREAMS for name in (s.kind, s.selected_as, s.container)}


def _field_name_uses(tree: ast.AST) -> set[int]:
    """ids of constants used as a field name (dict keys, subscripts, .get/.pop/.setdefault keys) or
    as words of an f-string."""
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # display text of an f-string
            allowed |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Constant)}
        if isinstance(node, ast.Dict):
            allowed |= {id(k) for k in node.keys if k is not None}
        elif isinstance(node, ast.Subscript):
            allowed.add(id(node.slice))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.args
            and node.func.attr in ("get", "pop", "setdefault")
        ):
            allowed.add(id(node.args[0]))
    return allowed


def type_name_decisions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in TABLES | PAGES or not rel.startswith(SCANNED):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = _field_name_uses(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in NAMES and id(node) not in allowed:
                found.append(f"{rel}:{node.lineno} {node.value!r}")
    return found


def test_the_engine_holds_no_type_name_outside_the_tables():
    assert type_name_decisions() == []


def test_the_scan_would_see_a_decision_by_name():
    tree = ast.parse('if rt.kind == "experiment":\n    pass\nx = {"experiment": 1}\n')
    allowed = _field_name_uses(tree)
    hits = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and n.value in NAMES and id(n) not in allowed
    ]
    assert hits == ["experiment"]
