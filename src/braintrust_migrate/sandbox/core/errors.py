"""The one exception handlers raise to answer an HTTP error (``{"error": message}`` with ``status``).

Apart from :mod:`.common` so that :mod:`.permissions`, which common uses, can raise it too.
"""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
