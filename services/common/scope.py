"""Branch scope: which segments' data a caller may see, enforced by every service's read routes.

A person can be limited to some branches (``Principal.branches``; ``None`` = no limit, as for
machines' keys and administrators). Segments are ``all``, ``branch:<code>``, ``product:<code>``,
``gender:<g>`` and ``rural:<bool>``; there are no compound segments, so a segment belongs to a
branch exactly when it is ``branch:<code>``. Every other segment is *institution-level*: it
aggregates all branches, so it tells a branch manager nothing about one other branch. A
branch-limited caller sees their branches' segments plus the institution-level ones, unless the
operator sets ``SCOPE_INSTITUTION_LEVEL_VISIBLE=false``.

Seeing is not acting: a branch-limited caller may acknowledge and silence only alerts of their
own branches (institution-level alerts are the institution's officers' to handle), and may not
change objectives (an objective holds every branch's targets). A request for one resource outside
the scope answers 403 in the one error shape; lists are filtered in SQL before paging.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import ColumnElement, false, not_, or_, true

from services.common.auth import Principal, authenticate
from services.common.errors import Forbidden, error_response
from services.common.settings import CommonSettings

BRANCH_PREFIX = "branch:"
OUTSIDE = "outside your branches"


def branch_of(segment: str) -> str | None:
    """The branch a segment belongs to, or None for an institution-level segment."""
    return segment.removeprefix(BRANCH_PREFIX) if segment.startswith(BRANCH_PREFIX) else None


@dataclass(frozen=True, slots=True)
class ScopePolicy:
    """The operator's choice: may branch-limited callers see institution-level values?"""

    institution_level_visible: bool = True

    @classmethod
    def of(cls, settings: CommonSettings) -> ScopePolicy:
        return cls(settings.scope_institution_level_visible)


class OutOfScope(Forbidden):
    """A request for data or an action outside the caller's branches: 403, naming the field."""

    def __init__(self, field: str, reason: str = OUTSIDE) -> None:
        super().__init__(field, reason, "forbidden: " + reason)


async def out_of_scope_handler(request: Request, exc: Exception) -> Response:
    """For apps that are not services (the embedded host): the services answer it through the
    shared handler set."""
    assert isinstance(exc, OutOfScope)  # noqa: S101 - registered for OutOfScope only
    return error_response(exc)


@dataclass(frozen=True, slots=True)
class DataScope:
    """What one caller may see: ``branches`` (None = everything) and the institution level."""

    branches: frozenset[str] | None
    institution: bool = True

    @property
    def limited(self) -> bool:
        return self.branches is not None

    def sees(self, segment: str) -> bool:
        if self.branches is None:
            return True
        branch = branch_of(segment)
        return self.institution if branch is None else branch in self.branches

    def may_act_on(self, segment: str) -> bool:
        """Acknowledge, silence: only one's own branches when limited."""
        if self.branches is None:
            return True
        branch = branch_of(segment)
        return branch is not None and branch in self.branches

    def check(self, segment: str, field: str) -> None:
        if not self.sees(segment):
            raise OutOfScope(field)

    def check_act(self, segment: str, field: str) -> None:
        if not self.may_act_on(segment):
            raise OutOfScope(
                field,
                OUTSIDE
                if not self.sees(segment)
                else "institution-level: only a caller without a branch limit may act on it",
            )

    def check_unlimited(self, field: str, reason: str) -> None:
        if self.branches is not None:
            raise OutOfScope(field, reason)

    def filter(self, rows: Iterable[Any], segment_of: Any) -> list[Any]:
        return [r for r in rows if self.sees(segment_of(r))]

    def segment_clause(self, column: Any) -> ColumnElement[bool]:
        """SQL ``column`` (a segment) is visible: put in the WHERE so paging sees it first."""
        if self.branches is None:
            return true()
        own = (
            column.in_(sorted(BRANCH_PREFIX + b for b in self.branches))
            if self.branches
            else false()
        )
        if self.institution:
            return or_(own, not_(column.like(BRANCH_PREFIX + "%")))
        return own

    def branch_clause(self, column: Any, *, institution: bool | None = None) -> ColumnElement[bool]:
        """SQL ``column`` (a branch code, NULL = institution-level) is visible."""
        if self.branches is None:
            return true()
        own = column.in_(sorted(self.branches)) if self.branches else false()
        if self.institution if institution is None else institution:
            return or_(own, column.is_(None))
        return own


def scope_policy(request: Request) -> ScopePolicy:
    policy = getattr(request.app.state, "scope_policy", None)
    return policy if isinstance(policy, ScopePolicy) else ScopePolicy()


async def data_scope(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> DataScope:
    return DataScope(principal.branches, scope_policy(request).institution_level_visible)


ScopeDep = Annotated[DataScope, Depends(data_scope)]
