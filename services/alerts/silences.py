"""Silences: a matcher set, who made it and why, and an end (there are no open-ended silences).

Matchers follow Alertmanager: ``=``, ``!=``, ``=~`` and ``!~`` (regex, anchored) on an alert's
labels (objective, target, indicator, segment, kind, severity, fingerprint). Expiring a silence
sets its end to now; the row stays for the record.

Regular expressions are RE2 (as in Alertmanager), matched in time linear in the label's length:
a backtracking engine takes minutes on ``([0-9a-f]+)+z`` against a 30-character fingerprint,
and silences are matched on the event loop at every flush. A pattern is at most
:data:`MAX_REGEX_LENGTH` characters and is checked when the silence is created; one RE2 cannot
compile (a silence stored before that check) matches nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import re2
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import models as m
from services.common.scope import BRANCH_PREFIX, DataScope, branch_of

log = logging.getLogger(__name__)

MAX_REGEX_LENGTH = 200
"""Characters in one regex matcher: labels are short codes, and the bound keeps RE2's compiled
programs (cached per pattern) small."""
_RE2_MAX_MEM = 1 << 20  # bytes for one compiled pattern; more is refused as an error


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr; the caller reports the error
    options.max_mem = _RE2_MAX_MEM
    return options


class BadPattern(ValueError):
    """A matcher's regular expression that RE2 does not accept, with RE2's reason."""


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Any:
    """The compiled RE2 program of a matcher; raises :class:`BadPattern`."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise BadPattern(f"a regular expression has at most {MAX_REGEX_LENGTH} characters")
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise BadPattern(f"not a regular expression RE2 accepts: {reason}") from None


def _regex_hit(pattern: str, value: str) -> bool | None:
    """Whether ``pattern`` matches the whole ``value``; None when the pattern is unusable."""
    try:
        program = compile_regex(pattern)
    except BadPattern as exc:
        log.warning("alerts: a silence's matcher is ignored (%s)", exc)
        return None
    return program.fullmatch(value) is not None


def matches(matchers: Sequence[Mapping[str, str]], lab: Mapping[str, str]) -> bool:
    for matcher in matchers:
        value = lab.get(matcher["name"], "")
        op = matcher.get("op", "=")
        if op == "=" and value != matcher["value"]:
            return False
        if op == "!=" and value == matcher["value"]:
            return False
        if op in ("=~", "!~"):
            hit = _regex_hit(matcher["value"], value)
            if hit is None or hit != (op == "=~"):
                return False
    return True


def silenced(silences: Sequence[Mapping[str, Any]], lab: Mapping[str, str]) -> bool:
    return any(matches(s["matchers"], lab) for s in silences)


async def active(session: AsyncSession, now: datetime) -> list[dict[str, Any]]:
    c = m.silences.c
    rows = await session.execute(select(m.silences).where(c.starts_at <= now, c.ends_at > now))
    return [dict(r._mapping) for r in rows.all()]


def branch_of_matchers(matchers: Sequence[Mapping[str, str]]) -> str | None:
    """The branch a silence is limited to: an exact ``segment = branch:<code>`` matcher makes it
    match that branch's alerts only; without one it is institution-wide (None)."""
    for matcher in matchers:
        if matcher["name"] == "segment" and matcher.get("op", "=") == "=":
            return branch_of(matcher["value"])
    return None


async def create(
    session: AsyncSession,
    *,
    matchers: list[dict[str, str]],
    created_by: str,
    created_by_subject: str | None = None,
    comment: str,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "matchers": matchers,
        "created_by": created_by,
        "created_by_subject": created_by_subject,
        "comment": comment,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "created_at": now,
        "expired_by": None,
        "expired_by_subject": None,
        "branch": branch_of_matchers(matchers),
    }
    await session.execute(m.silences.insert().values(**row))
    return row


async def expire(
    session: AsyncSession,
    silence_id: str,
    by: str,
    now: datetime,
    *,
    by_subject: str | None = None,
    scope: DataScope | None = None,
) -> dict[str, Any] | None:
    """End the silence now; raises OutOfScope when ``scope`` may not act on its branch."""
    row = await get(session, silence_id)
    if row is None:
        return None
    if scope is not None and scope.limited:
        branch = row["branch"]
        scope.check_act("" if branch is None else BRANCH_PREFIX + branch, "silence_id")
    if row["ends_at"] > now:
        changes = {"ends_at": now, "expired_by": by, "expired_by_subject": by_subject}
        await session.execute(
            update(m.silences).where(m.silences.c.id == silence_id).values(**changes)
        )
        row.update(changes)
    return row


async def get(session: AsyncSession, silence_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(m.silences).where(m.silences.c.id == silence_id))).first()
    return dict(row._mapping) if row else None


async def listing(
    session: AsyncSession,
    now: datetime,
    *,
    include_expired: bool,
    after: ColumnElement[bool] | None = None,
    limit: int | None = None,
    scope: DataScope | None = None,
) -> list[Any]:
    """Newest first, ordered by (created_at, id) so a cursor can resume after any row; only
    silences of ``scope``'s branches (and institution-wide ones when it sees that level)."""
    c = m.silences.c
    stmt = select(m.silences).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    if scope is not None:
        stmt = stmt.where(scope.branch_clause(c.branch))
    if not include_expired:
        stmt = stmt.where(c.ends_at > now)
    if after is not None:
        stmt = stmt.where(after)
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]
