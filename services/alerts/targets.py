"""The targets table: the compacted spm.objectives.v1 topic kept as rows.

A ``retired`` state removes the target (its alerts resolve). Optionally the table is seeded at
start-up from ``GET /v1/targets`` of the objectives service; the topic stays the authority (a
later record of a target replaces whatever the API said).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import TargetChanged
from services.alerts import models as m
from services.alerts.errors import AlertsError
from services.common.db import upsert

log = logging.getLogger(__name__)


def effective(target: TargetChanged, day: date) -> bool:
    return target.effective_from <= day and (
        target.effective_to is None or day <= target.effective_to
    )


async def active_targets(
    session: AsyncSession, code: str, segment: str, day: date
) -> list[TargetChanged]:
    c = m.targets.c
    rows = await session.scalars(
        select(c.data).where(c.indicator == code, c.segment == segment).order_by(c.target_id)
    )
    targets = [TargetChanged.model_validate(data) for data in rows]
    return [t for t in targets if effective(t, day)]


async def all_active_targets(
    session: AsyncSession, day: date
) -> list[tuple[TargetChanged, date | None]]:
    c = m.targets.c
    rows = await session.execute(select(c.data, c.first_seen_on).order_by(c.target_id))
    out = [(TargetChanged.model_validate(data), first) for data, first in rows.all()]
    return [(t, first) for t, first in out if effective(t, day)]


async def last_good_as_of(session: AsyncSession, code: str, segment: str) -> date | None:
    """The newest business date with a (non-null) value of this indicator and segment."""
    c = m.observations.c
    value: date | None = await session.scalar(
        select(func.max(c.as_of)).where(c.code == code, c.segment == segment, c.value.is_not(None))
    )
    return value


async def last_received_at(session: AsyncSession, code: str, segment: str) -> datetime | None:
    """When the newest value of this indicator and segment arrived (wall clock)."""
    c = m.observations.c
    value: datetime | None = await session.scalar(
        select(func.max(c.received_at)).where(c.code == code, c.segment == segment)
    )
    return value


async def latest_value(
    session: AsyncSession, code: str, segment: str
) -> tuple[date, Decimal] | None:
    """The newest non-null value of this indicator and segment, with its business date."""
    c = m.observations.c
    row = (
        await session.execute(
            select(c.as_of, c.value)
            .where(c.code == code, c.segment == segment, c.value.is_not(None))
            .order_by(c.as_of.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else (row[0], Decimal(row[1]))


async def upsert_target(
    session: AsyncSession, data: TargetChanged, today: date | None, now: datetime
) -> None:
    """Store an active target state; ``first_seen_on`` starts the no-data clock."""
    stmt = upsert(session, m.targets)
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.targets.c.target_id],
        set_={
            "indicator": stmt.excluded.indicator,
            "segment": stmt.excluded.segment,
            "data": stmt.excluded.data,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await session.execute(
        stmt,
        [{"target_id": data.target_id, "indicator": data.indicator, "segment": data.segment,
          "data": data.model_dump(mode="json"), "first_seen_on": today, "updated_at": now}],
    )  # fmt: skip


async def remove_target(session: AsyncSession, target_id: str) -> None:
    await session.execute(delete(m.targets).where(m.targets.c.target_id == target_id))


def _from_api(item: dict[str, Any], now: datetime) -> TargetChanged:
    """A ``TargetRead`` of the objectives API in the shape of the topic's payload."""
    threshold = item["threshold"]
    warning = item.get("warning_threshold")
    line = [Decimal(str(v)) for v in (threshold if isinstance(threshold, list) else [threshold])]
    band = (
        None
        if warning is None
        else [Decimal(str(v)) for v in (warning if isinstance(warning, list) else [warning])]
    )
    direction = item["direction"]
    low = direction in ("at_least", "within")
    high = direction in ("at_most", "within")
    return TargetChanged(
        target_id=item["id"],
        objective_id=item["objective_id"],
        objective_code=item["objective_code"],
        objective_name=item["objective_code"],
        dimension=item.get("dimension", "D1"),
        status=item.get("status", "active"),
        indicator=item["indicator"],
        segment=item.get("segment", "all"),
        direction=direction,
        lower=line[0] if low else None,
        upper=line[-1] if high else None,
        warning_lower=band[0] if band and low else None,
        warning_upper=band[-1] if band and high else None,
        for_days=item.get("for_days", 0),
        severity=item.get("severity", "warning"),
        notify=tuple(item.get("notify", ())),
        effective_from=item["effective_from"],
        effective_to=item.get("effective_to"),
        version=1,
        changed_at=now,
    )


async def fetch_from_api(url: str, api_key: str | None, now: datetime) -> list[TargetChanged]:
    """Active targets from the objectives service (start-up seed; failures are the caller's)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(f"{url.rstrip('/')}/v1/targets", headers=headers)
            response.raise_for_status()
            items = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise AlertsError(f"objectives API: {exc}", retriable=True) from exc
    out: list[TargetChanged] = []
    for item in items:
        try:
            out.append(_from_api(item, now))
        except (KeyError, ValidationError, ArithmeticError) as exc:
            log.warning("alerts: skipped a target from the objectives API (%s)", exc)
    return out
