"""The indicator service's errors (SpmError subclasses: each carries its status and whether
a retry may succeed)."""

from __future__ import annotations

from services.common.errors import SpmError


class StaleOwnership(SpmError):
    """The stored offsets moved under us: another instance owns (or owned) these partitions."""

    retriable = True


class ClaimRace(SpmError):
    """Another instance claimed an event of the batch after the batch was computed."""

    retriable = True


class ParametersChanged(SpmError):
    """A parameter the stored aggregates depend on differs from the one they were computed with."""


class OperationError(SpmError):
    """An operator command cannot do what it was asked (the message says why and what to do)."""
