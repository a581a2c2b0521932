"""Who holds a role for a branch: the directory alert routing resolves role receivers against.

A receiver can name people by role instead of fixed addresses ("the branch manager of the
alert's branch"): ``{"directory": {"role": "branch_manager"}}`` in ``ALERTS_ROUTES``. At send
time the alert's branch (from its ``branch:<code>`` segment) picks the members holding that role
for that branch; an institution-level alert picks the role's members without a branch limit.

The directory is an interface (:class:`Directory`: ``members(role, branch)``) so the source can
change without touching routing. Today it is :class:`StaticDirectory`, the operator's list in
``ALERTS_DIRECTORY`` / ``ALERTS_DIRECTORY_FILE`` (JSON or YAML: a list of
``{name, email, phone, role, branches}``); the dashboard's local accounts can back it later by
implementing the same method.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class Member(BaseModel):
    """One person of the directory; ``branches`` null = the whole institution."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: Email | None = None
    phone: Phone | None = None
    role: str = Field(min_length=1, max_length=64)
    branches: list[Code] | None = None


class Directory(Protocol):
    def members(self, role: str, branch: str | None) -> list[Member]:
        """Who holds ``role`` for ``branch`` (None: for the whole institution)."""
        ...


class StaticDirectory:
    """The operator's configured list."""

    def __init__(self, members: Iterable[Member]) -> None:
        self._members = list(members)

    def members(self, role: str, branch: str | None) -> list[Member]:
        return [
            m
            for m in self._members
            if m.role == role
            and (m.branches is None if branch is None else branch in (m.branches or ()))
        ]
