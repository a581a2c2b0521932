"""/v1/alerts: list, read, acknowledge; each within the caller's branch scope
(services.common.scope): lists filtered in SQL, one other branch's alert answers 403."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select

from services.alerts import models as m
from services.alerts import store
from services.alerts.api.deps import AckerDep, ReaderDep, ServiceDep
from services.alerts.schemas import AckCreate, AlertRead, AlertState
from services.common import paging
from services.common.errors import Conflict, NotFound
from services.common.scope import ScopeDep

router = APIRouter(prefix="/v1", tags=["alerts"])


@router.get("/alerts", response_model=list[AlertRead])
async def list_alerts(
    svc: ServiceDep,
    _: ReaderDep,
    scope: ScopeDep,
    response: Response,
    state: AlertState | None = None,
    cursor: paging.CursorParam = None,
    limit: paging.LimitParam = paging.DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Alerts, newest opened first; without ``state``, pending and firing ones.

    Ordered by the immutable ``created_at`` (not ``updated_at``) so that paging is stable while
    alerts change state between page fetches.
    """
    c = m.alerts.c
    stmt = select(m.alerts).order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
    stmt = stmt.where(c.state == state) if state else stmt.where(c.state.in_(store.ACTIVE))
    stmt = stmt.where(scope.segment_clause(c.segment))
    if (later := paging.after(c.created_at, c.id, cursor)) is not None:
        stmt = stmt.where(later)
    async with svc.read() as session:
        rows = [dict(r._mapping) for r in (await session.execute(stmt)).all()]
    return paging.page(rows, limit, lambda r: (r["created_at"], r["id"]), response)


@router.get("/alerts/{alert_id}", response_model=AlertRead)
async def get_alert(
    alert_id: str, svc: ServiceDep, _: ReaderDep, scope: ScopeDep
) -> dict[str, Any]:
    async with svc.read() as session:
        row = (await session.execute(select(m.alerts).where(m.alerts.c.id == alert_id))).first()
    if row is None:
        raise NotFound("alert_id", "alert not found")
    scope.check(row.segment, "alert_id")
    return dict(row._mapping)


@router.post("/alerts/{alert_id}/ack", response_model=AlertRead)
async def ack_alert(
    alert_id: str,
    svc: ServiceDep,
    who: AckerDep,
    scope: ScopeDep,
    body: AckCreate | None = None,
) -> dict[str, Any]:
    """Stop reminders for this episode; its resolution and any escalation are still sent.

    A branch-limited caller acknowledges only their branches' alerts (403 otherwise)."""
    async with svc.write() as session:
        found = (
            await session.execute(
                select(m.alerts).where(m.alerts.c.id == alert_id).with_for_update()
            )
        ).first()
        if found is None:
            raise NotFound("alert_id", "alert not found")
        row = dict(found._mapping)
        scope.check_act(row["segment"], "alert_id")
        if row["state"] not in store.ACTIVE:
            raise Conflict(
                "alert_id", f"alert is {row['state']}",
                "only a pending or firing alert can be acknowledged",
            )  # fmt: skip
        now = svc.clock.now()
        await store.change_alert(
            session, row, acked_at=now, acked_by=who.name, acked_by_subject=who.subject,
            ack_comment=body.comment if body else None, ack_severity=row["severity"],
        )  # fmt: skip
        await store.announce(session, svc.publisher, row, row["state"], now)
    return row
