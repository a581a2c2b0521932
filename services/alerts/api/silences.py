"""/v1/silences: create, list, expire.

A branch-limited caller (services.common.scope) creates only silences limited to one of their
branches (a ``segment = branch:<code>`` matcher), lists their branches' silences (plus the
institution-wide ones when they see that level) and expires only their branches' silences."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Response, status

from services.alerts import models as m
from services.alerts import silences
from services.alerts.api.deps import AckerDep, ReaderDep, ServiceDep
from services.alerts.schemas import SilenceCreate, SilenceRead
from services.common import paging
from services.common.errors import NotFound, Unprocessable
from services.common.scope import BRANCH_PREFIX, OutOfScope, ScopeDep

router = APIRouter(prefix="/v1", tags=["silences"])
MAX_SILENCE = timedelta(days=366)


def _read(row: dict[str, Any], svc: ServiceDep) -> dict[str, Any]:
    now = svc.clock.now()
    if row["ends_at"] <= now:
        state = "expired"
    elif row["starts_at"] > now:
        state = "pending"
    else:
        state = "active"
    return {**row, "status": state}


@router.post("/silences", status_code=status.HTTP_201_CREATED, response_model=SilenceRead)
async def create_silence(
    body: SilenceCreate, svc: ServiceDep, who: AckerDep, scope: ScopeDep
) -> dict[str, Any]:
    matchers = [mt.model_dump() for mt in body.matchers]
    if scope.limited:
        branch = silences.branch_of_matchers(matchers)
        if branch is None:
            raise OutOfScope("matchers", "needs a matcher segment = branch:<one of your branches>")
        scope.check_act(BRANCH_PREFIX + branch, "matchers")
    now = svc.clock.now()
    starts = body.starts_at or now
    if body.ends_at <= max(starts, now):
        raise Unprocessable(
            "ends_at", "must be in the future and after starts_at", "invalid silence"
        )
    if body.ends_at - starts > MAX_SILENCE:
        raise Unprocessable("ends_at", "a silence lasts at most 366 days", "invalid silence")
    async with svc.write() as session:
        row = await silences.create(
            session, matchers=matchers, created_by=who.name, created_by_subject=who.subject,
            comment=body.comment, starts_at=starts, ends_at=body.ends_at, now=now,
        )  # fmt: skip
    return _read(row, svc)


@router.get("/silences", response_model=list[SilenceRead])
async def list_silences(
    svc: ServiceDep,
    _: ReaderDep,
    scope: ScopeDep,
    response: Response,
    include_expired: bool = False,
    cursor: paging.CursorParam = None,
    limit: paging.LimitParam = paging.DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Newest first."""
    c = m.silences.c
    async with svc.read() as session:
        rows = await silences.listing(
            session, svc.clock.now(), include_expired=include_expired,
            after=paging.after(c.created_at, c.id, cursor), limit=limit + 1, scope=scope,
        )  # fmt: skip
    rows = paging.page(rows, limit, lambda r: (r["created_at"], r["id"]), response)
    return [_read(r, svc) for r in rows]


@router.delete("/silences/{silence_id}", response_model=SilenceRead)
async def expire_silence(
    silence_id: str, svc: ServiceDep, who: AckerDep, scope: ScopeDep
) -> dict[str, Any]:
    """Expire the silence now (it is kept for the record)."""
    async with svc.write() as session:
        row = await silences.expire(
            session, silence_id, who.name, svc.clock.now(), by_subject=who.subject, scope=scope
        )
    if row is None:
        raise NotFound("silence_id", "silence not found")
    return _read(row, svc)
