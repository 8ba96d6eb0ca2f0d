"""Parsed-query JSON (the object form of ``query`` in ``POST /btql``) to the :mod:`.parse` AST.

The official SDK sends this form when it fetches a dataset / experiment / logs through BTQL
(``ObjectFetcher._refetch``, with ``_internal_btql`` merged in), e.g.::

    {"select": [{"op": "star"}],
     "from": {"op": "function", "name": {"op": "ident", "name": ["dataset"]},
              "args": [{"op": "literal", "value": "<id>"}]},
     "filter": {"op": "and", "children": [{"op": "eq", "left": {"op": "ident", "name": ["id"]},
                                           "right": {"op": "literal", "value": "x"}}]},
     "sort": [{"expr": {"op": "ident", "name": ["created"]}, "dir": "asc"}],
     "cursor": null, "limit": 1000}

Only the subset the native text supports is accepted; anything else raises :class:`BtqlError`
naming the part. A clause whose value is ``null`` counts as absent (the SDK sends ``"cursor": null``).
"""

from __future__ import annotations

from typing import Any

from braintrust_migrate.sandbox.btql.parse import (
    CLAUSES,
    MAX_DEPTH,
    MAX_TERMS,
    SOURCES,
    UNSUPPORTED_CLAUSES,
    And,
    BtqlError,
    Compare,
    Expr,
    IsNull,
    Item,
    Measure,
    Not,
    Or,
    Query,
    Source,
    check,
)

_COMPARISONS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SHAPES = ("spans",)


def from_json(obj: dict[str, Any]) -> Query:
    """Translate a parsed-query JSON object into a :class:`Query` (raises :class:`BtqlError`)."""
    q = Query()
    for name in obj:
        if name in UNSUPPORTED_CLAUSES:
            raise BtqlError(f"the '{name}' clause is not supported by the sandbox")
        if name not in CLAUSES:
            raise BtqlError(f"unknown clause {name!r} (supported: {', '.join(CLAUSES)})")
    for name in CLAUSES:  # a fixed order: JSON keys have none that means anything
        value = obj.get(name)
        if value is None:
            continue
        q.clauses.append(name)
        _CLAUSES[name](q, value)
    check(q)
    return q


# --- clauses ------------------------------------------------------------------------------------


def _select(q: Query, value: Any) -> None:
    items = _list(value, "select")
    if any(isinstance(i, dict) and i.get("op") == "star" for i in items):
        if len(items) != 1:
            raise BtqlError("'select': a star cannot be combined with other fields")
        q.star = True
        return
    q.select = tuple(_item(i, "select") for i in items)


def _dimensions(q: Query, value: Any) -> None:
    q.dimensions = tuple(_item(i, "dimensions") for i in _list(value, "dimensions"))


def _measures(q: Query, value: Any) -> None:
    out = []
    for entry in _list(value, "measures"):
        expr = _dict(entry.get("expr") if isinstance(entry, dict) else None, "a 'measures' item's expr")
        if expr.get("op") != "function":
            raise BtqlError(f"'measures': expected a function such as count(1), found op {expr.get('op')!r}")
        function = _ident(expr.get("name"), "a 'measures' function name")
        if function.lower() != "count":
            raise BtqlError(f"the measure {function}(…) is not supported by the sandbox (only count)")
        args = expr.get("args") or []
        if not isinstance(args, list) or len(args) != 1:
            raise BtqlError("'measures': count(…) takes exactly one argument")
        arg = _dict(args[0], "count(…)'s argument")
        if arg.get("op") == "ident":
            _ident(arg, "count(…)")
        elif arg.get("op") not in ("literal", "star"):
            raise BtqlError(f"'measures': count(…) of op {arg.get('op')!r} is not supported by the sandbox")
        out.append(Measure("count", _alias(entry, "count")))
    q.measures = tuple(out)


def _from(q: Query, value: Any) -> None:
    node = _dict(value, "'from'")
    if node.get("op") != "function":
        raise BtqlError(
            f"'from': expected a function such as project_logs('<id>'), found op {node.get('op')!r}"
        )
    kind = _ident(node.get("name"), "'from'").lower()
    if kind not in SOURCES:
        raise BtqlError(
            f"the source {kind}(…) is not supported by the sandbox (supported: {', '.join(SOURCES)})"
        )
    ids = []
    for arg in _list(node.get("args"), f"{kind}(…) args"):
        if not (isinstance(arg, dict) and arg.get("op") == "literal" and isinstance(arg.get("value"), str)):
            raise BtqlError(f"{kind}(…): each argument must be a string literal object id")
        ids.append(arg["value"])
    shape = node.get("shape")
    if shape is not None and shape not in _SHAPES:
        raise BtqlError(f"the {shape!r} shape is not supported by the sandbox (only spans)")
    unknown = sorted(set(node) - {"op", "name", "args", "shape", "loc"})
    if unknown:
        raise BtqlError(f"'from': {', '.join(unknown)} is not supported by the sandbox")
    q.source = Source(kind, tuple(ids))


def _filter(q: Query, value: Any) -> None:
    q.filter = _Filter().expr(value, 0)


def _sort(q: Query, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    if len(items) != 1:
        raise BtqlError("sorting on several fields (or none) is not supported by the sandbox")
    entry = _dict(items[0], "a 'sort' item")
    direction = entry.get("dir", "asc")
    if direction not in ("asc", "desc"):
        raise BtqlError(f"'sort': dir must be 'asc' or 'desc', not {direction!r}")
    q.sort = (_ident(entry.get("expr"), "'sort'"), direction)


def _limit(q: Query, value: Any) -> None:
    if type(value) is not int or value < 0:
        raise BtqlError(f"'limit' needs a non-negative integer, not {value!r}")
    q.limit = value


def _cursor(q: Query, value: Any) -> None:
    if not isinstance(value, str):
        raise BtqlError(f"'cursor' needs a string, not {value!r}")
    q.cursor = value


_CLAUSES = {
    "select": _select,
    "measures": _measures,
    "dimensions": _dimensions,
    "from": _from,
    "filter": _filter,
    "sort": _sort,
    "limit": _limit,
    "cursor": _cursor,
}


# --- pieces -------------------------------------------------------------------------------------


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise BtqlError(f"{where}: expected a non-empty list")
    return value


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BtqlError(f"{where}: expected an object")
    return value


def _ident(node: Any, where: str) -> str:
    """The top-level field an ``{"op": "ident", "name": [...]}`` names."""
    if not (isinstance(node, dict) and node.get("op") == "ident"):
        op = node.get("op") if isinstance(node, dict) else None
        raise BtqlError(f"expected a field (op ident) in {where}, found {op!r}")
    name = node.get("name")
    if isinstance(name, str):
        name = [name]
    if not (isinstance(name, list) and name and all(isinstance(part, str) for part in name)):
        raise BtqlError(f"{where}: an ident's name must be a list of strings")
    if len(name) > 1:
        raise BtqlError(
            f"nested field paths ({'.'.join(name)}) are not supported by the sandbox; use top-level fields"
        )
    return name[0]


def _alias(entry: dict[str, Any], default: str) -> str:
    alias = entry.get("alias", default)
    if not isinstance(alias, str) or not alias:
        raise BtqlError(f"an alias must be a non-empty string, not {alias!r}")
    return alias


def _item(entry: Any, where: str) -> Item:
    entry = _dict(entry, f"a '{where}' item")
    if entry.get("op") == "ident":  # a bare field, named after itself
        name = _ident(entry, f"'{where}'")
        return Item(name, name)
    expr = entry.get("expr")
    if isinstance(expr, dict) and expr.get("op") == "function":
        raise BtqlError(f"function calls are not supported by the sandbox in '{where}'")
    name = _ident(expr, f"'{where}'")
    return Item(name, _alias(entry, name))


class _Filter:
    def __init__(self) -> None:
        self.terms = 0

    def expr(self, node: Any, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise BtqlError(f"the filter nests and / or / not deeper than the limit of {MAX_DEPTH}")
        node = _dict(node, "a 'filter' expression")
        op = node.get("op")
        if not isinstance(op, str):  # a fuzzed list here must be a 400, not an unhashable-key 500
            raise BtqlError(f"a 'filter' expression needs a string op, not {op!r}")
        if op in ("and", "or"):
            return self.boolean(op, node, depth)
        if op == "not":
            return Not(self.expr(node.get("expr"), depth + 1))
        if op in ("isnull", "isnotnull"):
            return IsNull(_ident(node.get("expr"), f"'{op}'"), negate=op == "isnotnull")
        if op in _COMPARISONS:
            return self.compare(_COMPARISONS[op], node)
        if op == "literal":
            raise BtqlError("a bare literal as a filter condition is not supported by the sandbox")
        raise BtqlError(f"the filter operator {op!r} is not supported by the sandbox")

    def boolean(self, op: str, node: dict[str, Any], depth: int) -> Expr:
        if "children" in node:
            children = _list(node["children"], f"'{op}' children")
        else:
            children = [node.get("left"), node.get("right")]
        kind = And if op == "and" else Or
        items: list[Expr] = []
        for child in children:
            expr = self.expr(child, depth + 1)
            # a and (b and c) is the flat a and b and c, as the text parser builds it
            items.extend(expr.items if isinstance(expr, kind) else (expr,))
        return items[0] if len(items) == 1 else kind(tuple(items))

    def compare(self, op: str, node: dict[str, Any]) -> Expr:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise BtqlError(f"the filter has more than {MAX_TERMS} comparisons, the limit")
        left, right = _dict(node.get("left"), op), _dict(node.get("right"), op)
        if left.get("op") == "literal" and right.get("op") == "ident":
            left, right, op = right, left, _FLIPPED.get(op, op)
        if right.get("op") == "ident":
            raise BtqlError(
                "comparing two fields is not supported by the sandbox (compare a field to a value)"
            )
        if right.get("op") != "literal":
            raise BtqlError(f"comparing with op {right.get('op')!r} is not supported by the sandbox")
        value = right.get("value")
        if isinstance(value, list | dict):
            raise BtqlError(
                f"comparing with a {type(value).__name__} literal is not supported by the sandbox"
            )
        return Compare(_ident(left, "a comparison"), op, value)
