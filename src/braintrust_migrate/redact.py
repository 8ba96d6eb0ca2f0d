"""Keeping secrets out of output: previews of keys and scrubbing of known values."""

from __future__ import annotations

import threading
from collections.abc import Iterable

_lock = threading.Lock()
_known_secrets: set[str] = set()


def preview(secret: str | None) -> str:
    """A recognisable but useless form of a secret: the prefix and the last four characters."""
    if not secret:
        return "<unset>"
    if len(secret) <= 8:
        return "…" + "*" * 4
    prefix = secret.split("-", 1)[0] + "-" if "-" in secret[:6] else ""
    return f"{prefix}…{secret[-4:]}"


def register_secret(secret: str | None) -> None:
    """Remember a secret so that scrub() removes it from any text we emit."""
    if secret and len(secret) >= 6:
        with _lock:
            _known_secrets.add(secret)


def register_secrets(secrets: Iterable[str | None]) -> None:
    for secret in secrets:
        register_secret(secret)


def scrub(text: str) -> str:
    """Replace every registered secret in `text` by its preview."""
    with _lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, preview(secret))
    return text
