"""Errors of the Fineract adapter; each carries the short reason that dead-letter headers show."""

from __future__ import annotations

from services.common.errors import SpmError


class FineractError(SpmError):
    """A Fineract record or hook could not be turned into canonical events."""

    def __init__(self, reason: str, message: str, *, retriable: bool = False) -> None:
        super().__init__(f"{reason}: {message}", retriable=retriable)
        self.reason = reason
        self.detail = message


class FineractDecodeError(FineractError):
    """Bytes that are not a Fineract message we can read (corrupt, unknown fingerprint)."""


class UnmappableEvent(FineractError):
    """A decoded event that lacks what its canonical event needs."""

    def __init__(self, message: str) -> None:
        super().__init__("unmappable", message)
