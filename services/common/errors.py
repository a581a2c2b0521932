"""The one exception base of the shared runtime; adapters translate infrastructure errors to it."""

from __future__ import annotations


class SpmError(Exception):
    """Base of our errors. ``retriable`` says whether trying again later may succeed."""

    retriable: bool = False

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable
