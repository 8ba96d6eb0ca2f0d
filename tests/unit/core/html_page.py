"""A parsed HTML report, read with the stdlib parser: tags, attributes, text and tables."""

from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []  # (tag, name, value)
        self.texts: list[str] = []
        self.tables: list[list[list[str]]] = []  # rows of cell texts, the header row first
        self.facts: dict[str, str] = {}  # <dt> -> <dd>
        self._cell: list[str] | None = None
        self._term: str | None = None
        self._in: str | None = None
        self._open: list[list[list[str]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, name, value) for name, value in attrs]
        if tag == "table":
            self._open.append([])
        elif tag == "tr" and self._open:
            self._open[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("dt", "dd"):
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._open:
            self._open[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag in ("dt", "dd"):
            self._in = None
        elif tag == "table" and self._open:
            self.tables.append(self._open.pop())

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._in == "dt":
            self._term = data
        elif self._in == "dd" and self._term is not None:
            self.facts[self._term] = self.facts.get(self._term, "") + data
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def table_with(self, *head: str) -> list[dict[str, str]]:
        """The first table whose header starts with `head`, as one dict per body row."""
        for rows in self.tables:
            if rows and tuple(rows[0][: len(head)]) == head:
                return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
        raise AssertionError(f"no table with header {head}; headers: {[t[0] for t in self.tables if t]}")
