"""/v1/actions: corrective actions on alerts and targets, with their history.

Read with ``alerts:read``; record and change with ``alerts:ack`` (the people who acknowledge an
alert are the ones who say what will be done about it). The history names the caller's
``Principal.name`` (a person's display name when signed in, a key's name otherwise).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select

from services.alerts import actions
from services.alerts import models as m
from services.alerts.api.deps import AckerDep, ReaderDep, ServiceDep
from services.alerts.schemas import (
    ActionCreate,
    ActionDetail,
    ActionPatch,
    ActionRead,
    ActionStatus,
)
from services.alerts.service import AlertService
from services.common import paging
from services.common.errors import NotFound, Unprocessable

router = APIRouter(prefix="/v1", tags=["actions"])
_NOT_NULL = ("title", "owner", "due_date", "review_date", "indicator", "segment", "status")


def _check_notify(svc: AlertService, notify: str | None) -> None:
    if notify is not None and "@" not in notify and notify not in svc.routing.receivers:
        raise Unprocessable("owner_notify", "neither an e-mail address nor a known receiver")


@router.post("/actions", response_model=ActionRead, status_code=status.HTTP_201_CREATED)
async def create_action(svc: ServiceDep, who: AckerDep, body: ActionCreate) -> dict[str, Any]:
    """Record an action on an alert or a target; its opening value and the target line it is
    judged against are recorded with it."""
    if body.alert_id is None and body.target_id is None:
        raise Unprocessable("alert_id", "an action is recorded on an alert or on a target")
    if body.review_date < body.due_date:
        raise Unprocessable("review_date", "the review date is before the due date")
    _check_notify(svc, body.owner_notify)
    async with svc.write() as session:
        if body.alert_id is not None:
            origin = await actions.origin_of_alert(session, body.alert_id)
            if origin is None:
                raise NotFound("alert_id", "alert not found")
            if body.target_id is not None and body.target_id != origin.target_id:
                raise Unprocessable("target_id", "not the target of the alert")
        else:
            assert body.target_id is not None  # noqa: S101 - checked above
            origin = await actions.origin_of_target(session, body.target_id)
            if origin is None:
                raise NotFound("target_id", "target not found")
        origin = await actions.retarget(
            session, origin, body.indicator or origin.indicator, body.segment or origin.segment
        )
        fields = body.model_dump(include={"title", "owner", "owner_notify", "due_date",
                                          "review_date"})  # fmt: skip
        return await actions.create(
            session, svc.action_publisher, origin, fields, who.name, svc.clock.now()
        )


@router.get("/actions", response_model=list[ActionRead])
async def list_actions(
    svc: ServiceDep,
    _: ReaderDep,
    response: Response,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    status: ActionStatus | None = None,
    alert_id: Annotated[str | None, Query(max_length=64)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: paging.CursorParam = None,
    limit: paging.LimitParam = paging.DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Newest recorded first (ordered by the immutable ``created_at``)."""
    c = m.actions.c
    stmt = select(m.actions).order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
    for column, value in ((c.owner, owner), (c.status, status), (c.alert_id, alert_id),
                          (c.target_id, target_id)):  # fmt: skip
        if value is not None:
            stmt = stmt.where(column == value)
    if (later := paging.after(c.created_at, c.id, cursor)) is not None:
        stmt = stmt.where(later)
    async with svc.read() as session:
        rows = [dict(r._mapping) for r in (await session.execute(stmt)).all()]
    return paging.page(rows, limit, lambda r: (r["created_at"], r["id"]), response)


@router.get("/actions/{action_id}", response_model=ActionDetail)
async def get_action(action_id: str, svc: ServiceDep, _: ReaderDep) -> dict[str, Any]:
    """The action and its history (oldest change first)."""
    async with svc.read() as session:
        row = await actions.load(session, action_id)
        if row is None:
            raise NotFound("action_id", "action not found")
        row["history"] = await actions.history(session, action_id)
    return row


@router.patch("/actions/{action_id}", response_model=ActionDetail)
async def change_action(
    action_id: str, svc: ServiceDep, who: AckerDep, body: ActionPatch
) -> dict[str, Any]:
    """Change fields or the status (``done``, ``cancelled``, ``open`` to reopen); who and when
    go into the history."""
    sent = body.model_dump(include=body.model_fields_set)
    for field in _NOT_NULL:
        if field in sent and sent[field] is None:
            raise Unprocessable(field, "may not be null")
    _check_notify(svc, sent.get("owner_notify"))
    note = sent.pop("note", None)
    async with svc.write() as session:
        row = await actions.load(session, action_id, lock=True)
        if row is None:
            raise NotFound("action_id", "action not found")
        origin = None
        indicator = sent.get("indicator", row["indicator"])
        segment = sent.get("segment", row["segment"])
        if (indicator, segment) != (row["indicator"], row["segment"]):
            origin = await actions.retarget(session, actions.origin_of_row(row), indicator, segment)
        row = await actions.change(
            session, svc.action_publisher, row, sent, who.name, svc.clock.now(),
            origin=origin, note=note,
        )  # fmt: skip
        row["history"] = await actions.history(session, action_id)
    return row
