"""The one exception base of the shared runtime (adapters translate infrastructure errors to it)
and the one error body of every API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SpmError(Exception):
    """Base of our errors. ``retriable`` says whether trying again later may succeed;
    ``dependency`` names the infrastructure that failed (``database``, ``kafka``), if any: the
    HTTP layer answers such errors 503 + Retry-After naming it."""

    retriable: bool = False
    dependency: str | None = None

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable


def error_body(errors: Sequence[tuple[str, str]], message: str) -> dict[str, Any]:
    """The one error shape of every API: a message plus each field and why."""
    return {"detail": message, "errors": [{"field": f, "reason": r} for f, r in errors]}
