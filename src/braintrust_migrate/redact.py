"""Keeping secrets out of output: previews of keys and scrubbing of known values.

Every secret is registered the moment it is loaded (API keys by the settings and the
client, secrets-file values by the loader), and `scrub()` then removes it from any text
we emit: log lines, error messages (an API error may quote the request body we sent),
reports and state. A value is also found in the forms a server echoing our JSON body
would show it in: JSON-escaped once or twice (a body quoted inside a JSON error string)
and URL-encoded.

Length rule: a value of MIN_SUBSTRING characters or more is removed wherever it occurs.
A shorter one would also match inside ordinary words and numbers (a secret "ab" would eat
every "ab" of every message), so it is removed only where it stands as a whole JSON string,
``"ab"``, which is how an echoed request body carries it. API keys keep a recognisable
preview (prefix and last four); secret values are replaced by MASK, showing nothing.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote

MIN_SUBSTRING = 4
MASK = "[redacted]"

_lock = threading.Lock()
_replacements: dict[str, str] = {}  # form of a secret -> what is shown instead
_short: dict[str, str] = {}  # a short value's quoted JSON form -> its masked form
_pattern: re.Pattern[str] | None = None


def preview(secret: str | None) -> str:
    """A recognisable but useless form of a secret: the prefix and the last four characters."""
    if not secret:
        return "<unset>"
    if len(secret) <= 8:
        return "…" + "*" * 4
    prefix = secret.split("-", 1)[0] + "-" if "-" in secret[:6] else ""
    return f"{prefix}…{secret[-4:]}"


def _forms(value: str) -> set[str]:
    once = json.dumps(value, ensure_ascii=False)[1:-1]
    once_ascii = json.dumps(value)[1:-1]
    twice = {
        json.dumps(form, ensure_ascii=ascii)[1:-1] for form in (once, once_ascii) for ascii in (True, False)
    }
    return {value, once, once_ascii, quote(value, safe=""), *twice}


def _add(value: str, shown: str) -> None:
    global _pattern
    with _lock:
        if len(value) >= MIN_SUBSTRING:
            for form in _forms(value):
                _replacements.setdefault(form, shown)
        else:
            for form in _forms(value):
                _short.setdefault(f'"{form}"', f'"{shown}"')
                _short.setdefault(f'\\"{form}\\"', f'\\"{shown}\\"')
        # Longest first, so a secret that contains another is replaced whole.
        alternatives = sorted(_replacements, key=len, reverse=True)
        _pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None


def register_secret(secret: str | None) -> None:
    """Remember an API key so that scrub() replaces it by its preview."""
    if secret and len(secret) >= 6:
        _add(secret, preview(secret))


def register_secrets(secrets: Iterable[str | None]) -> None:
    for secret in secrets:
        register_secret(secret)


def register_value(value: str | None) -> None:
    """Remember a secret value (secrets file: AI provider keys, env var values), any length."""
    if value:
        _add(value, MASK)


def scrub(text: str) -> str:
    """Replace every registered secret in `text`."""
    with _lock:
        pattern, replacements, short = _pattern, dict(_replacements), dict(_short)
    if pattern is not None:
        text = pattern.sub(lambda m: replacements[m.group()], text)
    for quoted, shown in short.items():
        if quoted in text:
            text = text.replace(quoted, shown)
    return text
