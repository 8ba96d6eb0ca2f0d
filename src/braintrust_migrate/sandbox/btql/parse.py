"""A parser for the subset of native BTQL the sandbox answers (braintrust-api.md §7.1).

Grammar (keywords and clause names are case-insensitive; newlines are whitespace, so a
clause may span lines; clauses may also be separated by ``|``)::

    query      := clause ( ["|"] clause )*
    clause     := "select" ":" ( "*" | item ("," item)* )
                | "measures" ":" measure ("," measure)*
                | "dimensions" ":" item ("," item)*
                | "from" ":" source
                | "filter" ":" expr
                | "sort" ":" field ["asc" | "desc"]
                | "limit" ":" INTEGER
                | "cursor" ":" STRING
    item       := field ["as" IDENT]
    measure    := "count" "(" ( NUMBER | "*" | field ) ")" ["as" IDENT]
    source     := ("project_logs" | "experiment" | "dataset") "(" STRING ("," STRING)* ")" ["spans"]
    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | primary
    primary    := "(" expr ")" | operand ( OP operand | "is" ["not"] "null" )
    operand    := field | STRING | NUMBER | "true" | "false" | "null"
    OP         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    field      := IDENT            (a top-level field; `back-quoted` names allowed)
    STRING     := '...'            (single quotes; '' or \\' inside for a quote)

Anything else raises :class:`BtqlError` saying exactly what is not supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CLAUSES = ("select", "measures", "dimensions", "from", "filter", "sort", "limit", "cursor")
# Real BTQL clauses the sandbox does not implement (named in the error message).
UNSUPPORTED_CLAUSES = (
    "unnest",
    "pivot",
    "preview_length",
    "inference_budget",
    "sample",
    "span_limit",
    "comparison_key",
    "weighted_scores",
    "custom_columns",
    "infer",
    "summary",
)
SOURCES = ("project_logs", "experiment", "dataset")
OPS = ("=", "!=", "<>", "<", "<=", ">", ">=")
# Bounds that keep a hostile query a 400 rather than a RecursionError or SQLite's own limits.
MAX_QUERY_CHARS = 1_000_000
MAX_DEPTH = 64  # nested parentheses / nots in a filter
MAX_TERMS = 10_000  # comparisons in a filter


class BtqlError(ValueError):
    """A query outside the supported subset (or malformed); the message says why."""


# --- AST ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    field: str
    op: str  # one of = != < <= > >= (<> is normalised to !=)
    value: Any


@dataclass(frozen=True)
class IsNull:
    field: str
    negate: bool


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


Expr = Compare | IsNull | And | Or | Not


@dataclass(frozen=True)
class Item:
    field: str
    alias: str


@dataclass(frozen=True)
class Measure:
    function: str
    alias: str


@dataclass(frozen=True)
class Source:
    kind: str
    ids: tuple[str, ...]


@dataclass
class Query:
    select: tuple[Item, ...] | None = None  # None: "select: *" (or no select at all)
    star: bool = False
    measures: tuple[Measure, ...] = ()
    dimensions: tuple[Item, ...] = ()
    source: Source | None = None
    filter: Expr | None = None
    sort: tuple[str, str] | None = None  # (field, "asc" | "desc")
    limit: int | None = None
    cursor: str | None = None
    clauses: list[str] = field(default_factory=list)


# --- tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # ident | quoted | string | number | op | punct | eof
    text: str
    value: Any
    pos: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.lower() in words


_PUNCT = "(),:|*."


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("--", i) or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch.isalpha() or ch == "_":
            start = i
            while i < n and (text[i].isalnum() or text[i] == "_"):
                i += 1
            tokens.append(Token("ident", text[start:i], text[start:i], start))
        elif ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise BtqlError(f"unterminated `quoted` name at offset {i}")
            tokens.append(Token("quoted", text[i + 1 : end], text[i + 1 : end], i))
            i = end + 1
        elif ch == "'":
            value, i = _string(text, i)
            tokens.append(Token("string", value, value, i))
        elif ch == '"':
            raise BtqlError(f"double-quoted text at offset {i}: write strings in single quotes ('...')")
        elif ch.isdigit() or (ch == "-" and i + 1 < n and text[i + 1].isdigit()):
            start = i
            i += 1
            while i < n and (
                text[i].isdigit() or text[i] in ".eE" or (text[i] in "+-" and text[i - 1] in "eE")
            ):
                i += 1
            raw = text[start:i]
            try:
                number: int | float = int(raw) if raw.lstrip("-").isdigit() else float(raw)
            except ValueError:
                raise BtqlError(f"malformed number {raw!r} at offset {start}") from None
            tokens.append(Token("number", raw, number, start))
        elif text.startswith(("<=", ">=", "!=", "<>", "=="), i):
            op = text[i : i + 2]
            tokens.append(Token("op", op, {"<>": "!=", "==": "="}.get(op, op), i))
            i += 2
        elif ch in "<>=":
            tokens.append(Token("op", ch, ch, i))
            i += 1
        elif ch in _PUNCT:
            tokens.append(Token("punct", ch, ch, i))
            i += 1
        else:
            raise BtqlError(f"unexpected character {ch!r} at offset {i}")
    tokens.append(Token("eof", "", None, n))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == "'":
            if text.startswith("''", i):
                out.append("'")
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise BtqlError(f"unterminated string starting at offset {start}")


# --- parser -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_QUERY_CHARS:
            raise BtqlError(f"the query is {len(text)} characters long, above the limit of {MAX_QUERY_CHARS}")
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.terms = 0

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise BtqlError(f"the filter nests parentheses / 'not' deeper than the limit of {MAX_DEPTH}")

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def punct(self, ch: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == ch:
            self.i += 1
            return True
        return False

    def expect(self, ch: str, what: str) -> None:
        if not self.punct(ch):
            raise BtqlError(f"expected {ch!r} {what}, found {self._describe(self.tok)}")

    def word(self, *words: str) -> bool:
        if self.tok.is_word(*words):
            self.i += 1
            return True
        return False

    @staticmethod
    def _describe(tok: Token) -> str:
        return "the end of the query" if tok.kind == "eof" else f"{tok.text!r} at offset {tok.pos}"

    def at_clause_start(self) -> bool:
        return self.tok.kind == "ident" and self.peek().kind == "punct" and self.peek().text == ":"

    # query
    def query(self) -> Query:
        q = Query()
        if self.tok.kind == "eof":
            raise BtqlError("empty query")
        while True:
            if not self.at_clause_start():
                raise BtqlError(f"expected a clause such as 'select:', found {self._describe(self.tok)}")
            name = self.take().text.lower()
            self.take()  # ':'
            if name in UNSUPPORTED_CLAUSES:
                raise BtqlError(f"the '{name}:' clause is not supported by the sandbox")
            if name not in CLAUSES:
                raise BtqlError(f"unknown clause '{name}:' (supported: {', '.join(CLAUSES)})")
            if name in q.clauses:
                raise BtqlError(f"the '{name}:' clause is given twice")
            q.clauses.append(name)
            getattr(self, f"clause_{name}")(q)
            self.punct("|")
            if self.tok.kind == "eof":
                break
        check(q)
        return q

    def end_of_clause(self, name: str) -> None:
        if not (self.tok.kind == "eof" or self.at_clause_start() or self.tok.text == "|"):
            raise BtqlError(f"unexpected {self._describe(self.tok)} in the '{name}:' clause")

    def field_name(self, where: str) -> str:
        tok = self.tok
        if tok.kind not in ("ident", "quoted") or tok.is_word("true", "false", "null", "and", "or", "not"):
            raise BtqlError(f"expected a field name in {where}, found {self._describe(tok)}")
        self.i += 1
        if self.tok.kind == "punct" and self.tok.text == ".":
            raise BtqlError(
                f"nested field paths ({tok.text}.…) are not supported by the sandbox; use top-level fields"
            )
        if self.tok.kind == "punct" and self.tok.text == "(":
            raise BtqlError(f"function calls ({tok.text}(…)) are not supported by the sandbox in {where}")
        return tok.text

    def item(self, where: str) -> Item:
        name = self.field_name(where)
        alias = self.field_name(where) if self.word("as") else name
        return Item(name, alias)

    def items(self, where: str) -> tuple[Item, ...]:
        out = [self.item(where)]
        while self.punct(","):
            out.append(self.item(where))
        return tuple(out)

    # clauses
    def clause_select(self, q: Query) -> None:
        if self.punct("*"):
            q.star = True
            if self.tok.text == ",":
                raise BtqlError("'select: *' cannot be combined with other fields")
        else:
            q.select = self.items("'select:'")
        self.end_of_clause("select")

    def clause_dimensions(self, q: Query) -> None:
        q.dimensions = self.items("'dimensions:'")
        self.end_of_clause("dimensions")

    def clause_measures(self, q: Query) -> None:
        out = []
        while True:
            tok = self.tok
            if tok.kind != "ident":
                raise BtqlError(f"expected a measure such as count(1), found {self._describe(tok)}")
            self.i += 1
            if tok.text.lower() != "count":
                raise BtqlError(f"the measure {tok.text}(…) is not supported by the sandbox (only count)")
            self.expect("(", "after count")
            if self.tok.kind == "number" or self.tok.text == "*":
                self.take()
            else:
                self.field_name("count(…)")
            self.expect(")", "to close count(")
            alias = self.field_name("'measures:'") if self.word("as") else "count"
            out.append(Measure("count", alias))
            if not self.punct(","):
                break
        q.measures = tuple(out)
        self.end_of_clause("measures")

    def clause_from(self, q: Query) -> None:
        tok = self.tok
        if tok.kind != "ident":
            raise BtqlError(f"expected a source such as project_logs('<id>'), found {self._describe(tok)}")
        self.i += 1
        kind = tok.text.lower()
        if kind not in SOURCES:
            raise BtqlError(
                f"the source {tok.text}(…) is not supported by the sandbox (supported: {', '.join(SOURCES)})"
            )
        self.expect("(", f"after {kind}")
        ids = []
        while True:
            if self.tok.kind != "string":
                raise BtqlError(f"expected a quoted object id in {kind}(…), found {self._describe(self.tok)}")
            ids.append(self.take().value)
            if not self.punct(","):
                break
        self.expect(")", f"to close {kind}(")
        if self.tok.kind == "ident" and not self.at_clause_start():
            shape = self.take().text.lower()
            if shape != "spans":
                raise BtqlError(f"the '{shape}' shape is not supported by the sandbox (only spans)")
        q.source = Source(kind, tuple(ids))
        self.end_of_clause("from")

    def clause_filter(self, q: Query) -> None:
        q.filter = self.expr()
        self.end_of_clause("filter")

    def clause_sort(self, q: Query) -> None:
        name = self.field_name("'sort:'")
        direction = "asc"
        if self.tok.is_word("asc", "desc"):
            direction = self.take().text.lower()
        if self.tok.text == ",":
            raise BtqlError("sorting on several fields is not supported by the sandbox")
        q.sort = (name, direction)
        self.end_of_clause("sort")

    def clause_limit(self, q: Query) -> None:
        tok = self.take()
        if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 0:
            raise BtqlError(f"'limit:' needs a non-negative integer, found {self._describe(tok)}")
        q.limit = tok.value
        self.end_of_clause("limit")

    def clause_cursor(self, q: Query) -> None:
        tok = self.take()
        if tok.kind != "string":
            raise BtqlError(f"'cursor:' needs a quoted string, found {self._describe(tok)}")
        q.cursor = tok.value
        self.end_of_clause("cursor")

    # expressions
    def expr(self) -> Expr:
        items = [self.and_expr()]
        while self.word("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Expr:
        items = [self.not_expr()]
        while self.word("and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Expr:
        if self.word("not"):
            self.nested()
            inner = self.not_expr()
            self.depth -= 1
            return Not(inner)
        return self.primary()

    def primary(self) -> Expr:
        if self.punct("("):
            self.nested()
            inner = self.expr()
            self.expect(")", "to close '('")
            self.depth -= 1
            return inner
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise BtqlError(f"the filter has more than {MAX_TERMS} comparisons, the limit")
        left = self.operand()
        if self.word("is"):
            negate = self.word("not")
            if not self.word("null"):
                raise BtqlError(f"expected 'null' after 'is', found {self._describe(self.tok)}")
            if not isinstance(left, _FieldRef):
                raise BtqlError("'is null' needs a field on its left")
            return IsNull(left.name, negate)
        tok = self.tok
        if tok.kind != "op":
            if tok.kind == "ident" and tok.text.lower() in (
                "like",
                "ilike",
                "match",
                "in",
                "includes",
                "contains",
            ):
                raise BtqlError(f"the operator {tok.text.upper()} is not supported by the sandbox")
            raise BtqlError(
                f"expected a comparison operator (=, !=, <, <=, >, >=), found {self._describe(tok)}"
            )
        self.i += 1
        right = self.operand()
        op = tok.value
        if isinstance(left, _FieldRef) and not isinstance(right, _FieldRef):
            return Compare(left.name, op, right.value)
        if isinstance(right, _FieldRef) and not isinstance(left, _FieldRef):
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            return Compare(right.name, flipped, left.value)
        if isinstance(left, _FieldRef):
            raise BtqlError(
                "comparing two fields is not supported by the sandbox (compare a field to a value)"
            )
        raise BtqlError("a comparison needs a field on one side")

    def operand(self) -> _FieldRef | _Value:
        tok = self.tok
        if tok.kind in ("string", "number"):
            self.i += 1
            return _Value(tok.value)
        if tok.is_word("true", "false", "null"):
            self.i += 1
            return _Value({"true": True, "false": False, "null": None}[tok.text.lower()])
        return _FieldRef(self.field_name("'filter:'"))


@dataclass(frozen=True)
class _FieldRef:
    name: str


@dataclass(frozen=True)
class _Value:
    value: Any


def check(q: Query) -> None:
    """The rules across clauses, shared with the parsed-query JSON form (:mod:`.json`)."""
    if q.source is None:
        raise BtqlError("the query needs a 'from:' clause")
    if q.measures and q.clauses.count("select"):
        raise BtqlError("'select:' and 'measures:' cannot be combined")
    if q.dimensions and not q.measures:
        raise BtqlError("'dimensions:' needs 'measures:'")


def parse(text: str) -> Query:
    """Parse native BTQL text into a :class:`Query` (raises :class:`BtqlError`)."""
    return _Parser(text).query()
