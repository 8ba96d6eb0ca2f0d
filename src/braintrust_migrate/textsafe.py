"""One sanitiser for text shown to a person: names and messages from either org may carry
terminal control sequences (ESC[2J, OSC 8 links, OSC 0 titles, C1 CSI), which a terminal
would obey. They are shown escaped instead (``\\x1b``), so they are visible and inert.

Escaped: C0 controls (U+0000-U+001F, tab and newline included unless kept), DEL, C1
controls (U+0080-U+009F), bidi embeddings/overrides/isolates and marks (which reorder what
is shown), and the Unicode line and paragraph separators. Every other character, any script
and emoji, is left as it is. A backslash is not escaped: a name that spells ``\\x1b`` reads
the same as an escaped ESC, which is harmless since neither does anything.

JSON output needs none of this: its encoder already escapes control characters.
"""

from __future__ import annotations

import re

from rich.markup import escape as _markup_escape

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_lines: bool = False) -> str:
    """`text` (str() of it) with every control character shown as an escape.

    `keep_lines` keeps newlines and tabs, for text that is several lines by design
    (a traceback); a name or a message that should be one line leaves it False.
    """
    value = text if isinstance(text, str) else str(text)
    return (_UNSAFE_KEEP_LINES if keep_lines else _UNSAFE).sub(_escaped, value)


def markup_safe(text: object) -> str:
    """`printable(text)` that Rich shows literally: ``[link=...]``-style markup escaped too."""
    return _markup_escape(printable(text))
