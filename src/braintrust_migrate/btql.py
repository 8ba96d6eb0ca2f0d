"""The one place BTQL text is built: every literal goes through `lit`, so an id or a name
holding a quote, a backslash or a newline can never change what a query means."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

CONTAINERS = frozenset({"project_logs", "experiment", "dataset"})
SORTABLE = frozenset({"asc", "desc"})


def lit(value: str | int | float | bool | datetime | None) -> str:
    """A BTQL literal: strings single-quoted with `\\` and `'` backslash-escaped (every
    other character, newlines included, stands for itself); numbers and booleans bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        value = value.isoformat().replace("+00:00", "Z")
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def field_name(name: str) -> str:
    """A field path (`a.b`), each part back-quoted unless it is a plain identifier."""
    parts = []
    for part in name.split("."):
        if part.isidentifier():
            parts.append(part)
        elif "`" in part:
            raise ValueError(f"field name {name!r} cannot be written in BTQL")
        else:
            parts.append(f"`{part}`")
    return ".".join(parts)


def eq(name: str, value: str | int | float | bool | datetime | None) -> str:
    return f"{field_name(name)} = {lit(value)}"


def cmp(name: str, op: str, value: str | int | float | datetime) -> str:
    if op not in ("=", "!=", "<", "<=", ">", ">="):
        raise ValueError(f"unknown BTQL operator {op!r}")
    return f"{field_name(name)} {op} {lit(value)}"


def any_of(name: str, values: Iterable[str | int]) -> str:
    """`name` equal to one of `values` (an empty set matches nothing)."""
    terms = [eq(name, v) for v in dict.fromkeys(values)]
    if not terms:
        return "false"
    return terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"


def all_of(conditions: Iterable[str]) -> str:
    terms = [c for c in conditions if c]
    return " and ".join(f"({c})" if " or " in c and not _grouped(c) else c for c in terms)


def _grouped(condition: str) -> bool:
    """Whether one bracket pair encloses the whole condition ("(a) or (b)" is two groups)."""
    if not condition.startswith("("):
        return False
    depth, quote, escaped = 0, "", False
    for index, char in enumerate(condition):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "'`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index == len(condition) - 1
    return False


@dataclass
class Query:
    """One BTQL query over event containers of one kind; `text()` renders it."""

    kind: str
    ids: Sequence[str]
    select: Sequence[str] = ("*",)
    measures: Sequence[str] = ()
    dimensions: Sequence[str] = ()  # fields the measures are grouped by
    filters: list[str] = field(default_factory=list)
    sort: Sequence[tuple[str, str]] = ()
    limit: int | None = None
    cursor: str | None = None
    shape: str = "spans"

    def where(self, *conditions: str) -> Query:
        self.filters += [c for c in conditions if c]
        return self

    def text(self) -> str:
        if self.kind not in CONTAINERS:
            raise ValueError(f"unknown container kind {self.kind!r}")
        if not self.ids:
            raise ValueError("a BTQL query needs at least one container id")
        lines = []
        if self.measures:
            lines.append("measures: " + ", ".join(self.measures))
            if self.dimensions:
                lines.append("dimensions: " + ", ".join(field_name(d) for d in self.dimensions))
        else:
            lines.append("select: " + ", ".join(s if s == "*" else field_name(s) for s in self.select))
        lines.append(f"from: {self.kind}({', '.join(lit(i) for i in self.ids)}) {self.shape}")
        if self.filters:
            lines.append("filter: " + all_of(self.filters))
        if self.sort:
            for _, direction in self.sort:
                if direction not in SORTABLE:
                    raise ValueError(f"unknown sort direction {direction!r}")
            lines.append("sort: " + ", ".join(f"{field_name(n)} {d}" for n, d in self.sort))
        if self.limit is not None:
            lines.append(f"limit: {int(self.limit)}")
        if self.cursor:
            lines.append(f"cursor: {lit(self.cursor)}")
        return "\n".join(lines)

    def body(self) -> dict[str, str]:
        return {"query": self.text(), "fmt": "json"}
