"""/v1/notifications: the notification log (outbox rows and what became of them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from services.alerts import models as m
from services.alerts.api.deps import ReaderDep, ServiceDep
from services.alerts.schemas import NotificationRead

router = APIRouter(prefix="/v1", tags=["notifications"])


@router.get("/notifications", response_model=list[NotificationRead])
async def list_notifications(
    svc: ServiceDep,
    _: ReaderDep,
    status: Literal["pending", "sent", "failed"] | None = None,
    alert_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Newest first."""
    c = m.notifications.c
    stmt = select(m.notifications).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(c.status == status)
    async with svc.read() as session:
        rows = [dict(r._mapping) for r in (await session.execute(stmt)).all()]
    if alert_id:
        rows = [r for r in rows if alert_id in r["alert_ids"]]
    return rows
