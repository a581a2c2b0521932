"""Reads and writes of alert rows and their spm.alert.changed.v1 announcements.

The caller owns the transaction: an alert's new state and its announcement commit together.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import AlertChanged, TargetChanged
from services.alerts import models as m
from services.alerts.rules import Kind, State
from services.common.bus import event_message
from services.common.outbox import enqueue

EVENT_TYPE = "spm.alert.changed.v1"
ACTIVE: tuple[State, ...] = ("pending", "firing")


def fingerprint(target_id: str, segment: str, kind: Kind) -> str:
    """The identity of an alert: target + segment + kind."""
    return hashlib.sha256(f"{target_id}\x1f{segment}\x1f{kind}".encode()).hexdigest()[:16]


def text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def number(raw: str | None) -> Decimal | None:
    return None if raw is None else Decimal(raw)


@dataclass(frozen=True, slots=True)
class Publisher:
    topic: str
    source: str


async def active_alert(session: AsyncSession, fp: str) -> dict[str, Any] | None:
    c = m.alerts.c
    row = (
        await session.execute(
            select(m.alerts).where(c.fingerprint == fp, c.state.in_(ACTIVE)).limit(1)
        )
    ).first()
    return dict(row._mapping) if row else None


async def open_alert(
    session: AsyncSession,
    target: TargetChanged,
    kind: Kind,
    *,
    state: State,
    severity: str,
    value: Decimal | None,
    threshold: Decimal | None,
    as_of: date,
    detail: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "fingerprint": fingerprint(target.target_id, target.segment, kind),
        "target_id": target.target_id,
        "objective_id": target.objective_id,
        "objective_code": target.objective_code,
        "indicator": target.indicator,
        "segment": target.segment,
        "kind": kind,
        "state": state,
        "severity": severity,
        "value": text(value),
        "threshold": text(threshold),
        "since": as_of,
        "as_of": as_of,
        "fired_on": as_of if state == "firing" else None,
        "resolved_on": None,
        "detail": detail,
        "created_at": now,
        "fired_at": now if state == "firing" else None,
        "resolved_at": None,
        "updated_at": now,
        "acked_at": None,
        "acked_by": None,
        "acked_by_subject": None,
        "ack_comment": None,
        "ack_severity": None,
    }
    await session.execute(insert(m.alerts).values(**row))
    return row


async def change_alert(session: AsyncSession, row: dict[str, Any], **changes: Any) -> None:
    row.update(changes)
    await session.execute(update(m.alerts).where(m.alerts.c.id == row["id"]).values(**changes))


async def drop_alert(session: AsyncSession, row: dict[str, Any]) -> None:
    """A pending episode that cleared: it never happened as far as anyone was told."""
    await session.execute(delete(m.alerts).where(m.alerts.c.id == row["id"]))


async def announce(
    session: AsyncSession, pub: Publisher, row: dict[str, Any], state: State, now: datetime
) -> None:
    """Enqueue spm.alert.changed.v1 for ``row`` in the caller's transaction."""
    data = AlertChanged(
        alert_id=row["id"],
        fingerprint=row["fingerprint"],
        target_id=row["target_id"],
        objective_id=row["objective_id"],
        objective_code=row["objective_code"],
        indicator=row["indicator"],
        segment=row["segment"],
        kind=row["kind"],
        state=state,
        severity=row["severity"],
        value=number(row["value"]),
        threshold=number(row["threshold"]),
        as_of=row["as_of"],
        since=row["since"],
        acknowledged_by=row["acked_by"],
        changed_at=now,
    )
    message = event_message(
        pub.topic,
        source=pub.source,
        event_type=EVENT_TYPE,
        time=now,
        subject=row["fingerprint"],
        data=data,
    )
    await enqueue(session, m.outbox, message)


async def purge_history(session: AsyncSession, before: datetime) -> int:
    """Delete what only history needs once it is older than ``before``: sent or failed
    notifications, resolved alerts and ended silences. Returns how many rows went."""
    n, a, s = m.notifications.c, m.alerts.c, m.silences.c
    deleted = 0
    for stmt in (
        delete(m.notifications).where(n.status != "pending", n.created_at < before),
        delete(m.alerts).where(a.state == "resolved", a.updated_at < before),
        delete(m.silences).where(s.ends_at < before),
    ):
        deleted += (await session.execute(stmt)).rowcount  # type: ignore[attr-defined]
    return deleted
