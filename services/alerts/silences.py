"""Silences: a matcher set, who made it and why, and an end (there are no open-ended silences).

Matchers follow Alertmanager: ``=``, ``!=``, ``=~`` and ``!~`` (regex, anchored) on an alert's
labels (objective, target, indicator, segment, kind, severity, fingerprint). Expiring a silence
sets its end to now; the row stays for the record.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import models as m


def matches(matchers: Sequence[Mapping[str, str]], lab: Mapping[str, str]) -> bool:
    for matcher in matchers:
        value = lab.get(matcher["name"], "")
        op = matcher.get("op", "=")
        if op == "=" and value != matcher["value"]:
            return False
        if op == "!=" and value == matcher["value"]:
            return False
        if op in ("=~", "!~"):
            hit = re.fullmatch(matcher["value"], value) is not None
            if hit != (op == "=~"):
                return False
    return True


def silenced(silences: Sequence[Mapping[str, Any]], lab: Mapping[str, str]) -> bool:
    return any(matches(s["matchers"], lab) for s in silences)


async def active(session: AsyncSession, now: datetime) -> list[dict[str, Any]]:
    c = m.silences.c
    rows = await session.execute(select(m.silences).where(c.starts_at <= now, c.ends_at > now))
    return [dict(r._mapping) for r in rows.all()]


async def create(
    session: AsyncSession,
    *,
    matchers: list[dict[str, str]],
    created_by: str,
    comment: str,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "matchers": matchers,
        "created_by": created_by,
        "comment": comment,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "created_at": now,
        "expired_by": None,
    }
    await session.execute(m.silences.insert().values(**row))
    return row


async def expire(
    session: AsyncSession, silence_id: str, by: str, now: datetime
) -> dict[str, Any] | None:
    row = await get(session, silence_id)
    if row is None:
        return None
    if row["ends_at"] > now:
        await session.execute(
            update(m.silences)
            .where(m.silences.c.id == silence_id)
            .values(ends_at=now, expired_by=by)
        )
        row.update(ends_at=now, expired_by=by)
    return row


async def get(session: AsyncSession, silence_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(m.silences).where(m.silences.c.id == silence_id))).first()
    return dict(row._mapping) if row else None


async def listing(session: AsyncSession, now: datetime, *, include_expired: bool) -> list[Any]:
    c = m.silences.c
    stmt = select(m.silences).order_by(c.created_at.desc())
    if not include_expired:
        stmt = stmt.where(c.ends_at > now)
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]
