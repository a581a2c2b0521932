"""/v1/notifications: the notification log (outbox rows and what became of them).

A branch-limited caller sees a notification only when it mentions an alert they see and none
they do not (a message about two branches' alerts tells of both), filtered in SQL before paging.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import ColumnElement, and_, cast, column, exists, func, not_, select
from sqlalchemy.dialects.postgresql import JSONB

from services.alerts import models as m
from services.alerts.api.deps import ReaderDep, ServiceDep
from services.alerts.schemas import NotificationRead
from services.common import paging
from services.common.scope import DataScope, ScopeDep

router = APIRouter(prefix="/v1", tags=["notifications"])


def _mentioned(dialect: str) -> Any:
    """The ids in ``alert_ids``, as a one-column ``value`` table to join on."""
    ids = m.notifications.c.alert_ids
    if dialect == "postgresql":
        return func.jsonb_array_elements_text(cast(ids, JSONB)).table_valued("value")
    return func.json_each(ids).table_valued("value")


def _in_scope(scope: DataScope, dialect: str) -> ColumnElement[bool]:
    """Some mentioned alert is visible and none is invisible."""
    a = m.alerts.c

    def mentioned_where(clause: ColumnElement[bool]) -> ColumnElement[bool]:
        each = _mentioned(dialect)
        return exists(
            select(1).select_from(each).join(m.alerts, a.id == each.c.value).where(clause)
        )

    visible = scope.segment_clause(a.segment)
    return and_(mentioned_where(visible), not_(mentioned_where(not_(visible))))


def _mentions(alert_id: str, dialect: str) -> ColumnElement[bool]:
    """SQL "``alert_ids`` contains ``alert_id``", so the filter runs before the LIMIT."""
    ids = m.notifications.c.alert_ids
    if dialect == "postgresql":
        return cast(ids, JSONB).contains([alert_id])
    each = func.json_each(ids).table_valued("value")
    return exists(select(1).select_from(each).where(column("value") == alert_id))


@router.get("/notifications", response_model=list[NotificationRead])
async def list_notifications(
    svc: ServiceDep,
    _: ReaderDep,
    scope: ScopeDep,
    response: Response,
    status: Literal["pending", "sent", "failed"] | None = None,
    alert_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: paging.CursorParam = None,
    limit: paging.LimitParam = paging.DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Newest first."""
    c = m.notifications.c
    stmt = select(m.notifications).order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
    if status:
        stmt = stmt.where(c.status == status)
    if (later := paging.after(c.created_at, c.id, cursor)) is not None:
        stmt = stmt.where(later)
    async with svc.read() as session:
        dialect = session.get_bind().dialect.name
        if alert_id:
            stmt = stmt.where(_mentions(alert_id, dialect))
        if scope.limited:
            stmt = stmt.where(_in_scope(scope, dialect))
        rows = [dict(r._mapping) for r in (await session.execute(stmt)).all()]
    return paging.page(rows, limit, lambda r: (r["created_at"], r["id"]), response)
