"""/v1/objectives and /v1/targets."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from contracts.envelope import FieldError
from services.common import paging
from services.objectives.api.deps import ReaderDep, RuntimeDep, WriterDep
from services.objectives.schemas import (
    ObjectiveCreate,
    ObjectiveRead,
    ObjectiveUpdate,
    Segment,
    Status,
    TargetRead,
    VersionRead,
)
from services.objectives.service import Invalid, PreconditionRequired

router = APIRouter(prefix="/v1", tags=["objectives"])

IfMatch = Annotated[
    str | None, Header(description='The version being changed, e.g. "3" (the ETag).')
]


def _etag(response: Response, objective: ObjectiveRead) -> ObjectiveRead:
    response.headers["ETag"] = f'"{objective.version}"'
    return objective


def expected_version(if_match: str | None, version: int | None) -> int:
    """The version a change is based on, from If-Match or the body; one of them is required."""
    from_header: int | None = None
    if if_match is not None:
        raw = if_match.strip().removeprefix("W/").strip('"')
        if not raw.isdigit():
            raise Invalid([FieldError("If-Match", 'must be a version ETag such as "3"')])
        from_header = int(raw)
    if from_header is not None and version is not None and from_header != version:
        raise Invalid([FieldError("version", f"disagrees with If-Match ({from_header})")])
    chosen = from_header if from_header is not None else version
    if chosen is None:
        raise PreconditionRequired("send the version you change: If-Match header or `version`")
    return chosen


@router.post("/objectives", status_code=status.HTTP_201_CREATED, response_model=ObjectiveRead)
async def create_objective(
    body: ObjectiveCreate, rt: RuntimeDep, principal: WriterDep, response: Response
) -> ObjectiveRead:
    async with rt.write() as session:
        created = await rt.service.create(session, body, author=principal.name)
    response.headers["Location"] = f"/v1/objectives/{created.id}"
    return _etag(response, created)


@router.get("/objectives", response_model=list[ObjectiveRead])
async def list_objectives(
    rt: RuntimeDep, _: ReaderDep, status: Status | None = None
) -> list[ObjectiveRead]:
    async with rt.read() as session:
        return await rt.service.list_all(session, status)


@router.get("/objectives/{objective_id}", response_model=ObjectiveRead)
async def get_objective(
    objective_id: str, rt: RuntimeDep, _: ReaderDep, response: Response
) -> ObjectiveRead:
    async with rt.read() as session:
        return _etag(response, await rt.service.get(session, objective_id))


@router.patch("/objectives/{objective_id}", response_model=ObjectiveRead)
async def update_objective(
    objective_id: str,
    body: ObjectiveUpdate,
    rt: RuntimeDep,
    principal: WriterDep,
    response: Response,
    if_match: IfMatch = None,
) -> ObjectiveRead:
    version = expected_version(if_match, body.version)
    async with rt.write() as session:
        updated = await rt.service.update(
            session, objective_id, body, expected_version=version, author=principal.name
        )
    return _etag(response, updated)


@router.delete("/objectives/{objective_id}", response_model=ObjectiveRead)
async def retire_objective(
    objective_id: str,
    rt: RuntimeDep,
    principal: WriterDep,
    response: Response,
    reason: Annotated[str, Query(min_length=1, max_length=2000, description="Why.")],
    version: Annotated[int | None, Query(ge=1)] = None,
    if_match: IfMatch = None,
) -> ObjectiveRead:
    """Retire the objective (history is kept; its targets are published as retired)."""
    expected = expected_version(if_match, version)
    async with rt.write() as session:
        retired = await rt.service.retire(
            session, objective_id, expected_version=expected, author=principal.name, reason=reason
        )
    return _etag(response, retired)


@router.get("/objectives/{objective_id}/history", response_model=list[VersionRead])
async def objective_history(
    objective_id: str,
    rt: RuntimeDep,
    _: ReaderDep,
    response: Response,
    cursor: paging.SeqCursorParam = None,
    limit: paging.LimitParam = paging.DEFAULT_LIMIT,
) -> list[VersionRead]:
    """The audit trail, oldest version first, paged by version."""
    async with rt.read() as session:
        rows = await rt.service.history(session, objective_id, cursor=cursor, limit=limit + 1)
    return paging.page(rows, limit, lambda v: (v.version, v.objective_id), response)


@router.get("/targets", response_model=list[TargetRead], tags=["targets"])
async def list_targets(
    rt: RuntimeDep,
    _: ReaderDep,
    indicator: Annotated[str | None, Query(max_length=100)] = None,
    segment: Annotated[Segment | None, Query()] = None,
    active_on: date | None = None,
) -> list[TargetRead]:
    """Active targets of active objectives: what the alert service and dashboards read."""
    async with rt.read() as session:
        return await rt.service.targets(
            session, indicator=indicator, segment=segment, active_on=active_on
        )
