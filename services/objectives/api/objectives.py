"""/v1/objectives and /v1/targets.

Branch scope (services.common.scope): a branch-limited caller sees only the targets of their
branches (and institution-level ones when that level is visible); an objective with none of
those is refused (403) or left out of lists, and its audit trail shows only those targets.
Changing objectives needs a caller without a branch limit: an objective holds every branch's
targets, and a change made through a partial view would drop the unseen ones.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from contracts.envelope import FieldError
from services.common import paging
from services.common.errors import Invalid, PreconditionRequired
from services.common.scope import DataScope, OutOfScope, ScopeDep
from services.objectives.api.deps import ReaderDep, StateDep, WriterDep
from services.objectives.schemas import (
    ObjectiveCreate,
    ObjectiveRead,
    ObjectiveUpdate,
    Segment,
    Status,
    TargetRead,
    VersionRead,
)

router = APIRouter(prefix="/v1", tags=["objectives"])

NO_WRITE = "a branch-limited caller may not change objectives (they hold every branch's targets)"


def _scoped(objective: ObjectiveRead, scope: DataScope) -> ObjectiveRead | None:
    """The objective with only the targets ``scope`` sees; None when it sees none of them."""
    if not scope.limited:
        return objective
    targets = [t for t in objective.targets if scope.sees(t.segment)]
    return objective.model_copy(update={"targets": targets}) if targets else None


def _scoped_version(version: VersionRead, scope: DataScope) -> VersionRead:
    """An audit row without the targets (in before, after and the diff) outside ``scope``."""
    if not scope.limited:
        return version
    hidden: set[str] = set()
    for doc in (version.before, version.after):
        for target in (doc or {}).get("targets", []):
            if not scope.sees(str(target.get("segment", "all"))):
                hidden.add(str(target.get("id")))

    def strip(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        kept = [t for t in doc.get("targets", []) if str(t.get("id")) not in hidden]
        return {**doc, "targets": kept}

    diff = [e for e in version.diff if not any(e.path.startswith(f"targets[{h}]") for h in hidden)]
    after = strip(version.after) or {}
    return version.model_copy(
        update={"before": strip(version.before), "after": after, "diff": diff}
    )


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
        raise PreconditionRequired(
            "If-Match",
            "send the version you change: If-Match header or `version`",
            "version required",
        )
    return chosen


@router.post("/objectives", status_code=status.HTTP_201_CREATED, response_model=ObjectiveRead)
async def create_objective(
    body: ObjectiveCreate,
    rt: StateDep,
    principal: WriterDep,
    scope: ScopeDep,
    response: Response,
) -> ObjectiveRead:
    scope.check_unlimited("objective", NO_WRITE)
    async with rt.write() as session:
        created = await rt.service.create(
            session, body, author=principal.name, author_subject=principal.subject
        )
    response.headers["Location"] = f"/v1/objectives/{created.id}"
    return _etag(response, created)


@router.get("/objectives", response_model=list[ObjectiveRead])
async def list_objectives(
    rt: StateDep, _: ReaderDep, scope: ScopeDep, status: Status | None = None
) -> list[ObjectiveRead]:
    async with rt.read() as session:
        found = await rt.service.list_all(session, status)
    return [o for o in (_scoped(o, scope) for o in found) if o is not None]


@router.get("/objectives/{objective_id}", response_model=ObjectiveRead)
async def get_objective(
    objective_id: str, rt: StateDep, _: ReaderDep, scope: ScopeDep, response: Response
) -> ObjectiveRead:
    async with rt.read() as session:
        scoped = _scoped(await rt.service.get(session, objective_id), scope)
    if scoped is None:
        raise OutOfScope("objective_id")
    return _etag(response, scoped)


@router.patch("/objectives/{objective_id}", response_model=ObjectiveRead)
async def update_objective(
    objective_id: str,
    body: ObjectiveUpdate,
    rt: StateDep,
    principal: WriterDep,
    scope: ScopeDep,
    response: Response,
    if_match: IfMatch = None,
) -> ObjectiveRead:
    scope.check_unlimited("objective_id", NO_WRITE)
    version = expected_version(if_match, body.version)
    async with rt.write() as session:
        updated = await rt.service.update(
            session, objective_id, body, expected_version=version, author=principal.name,
            author_subject=principal.subject,
        )  # fmt: skip
    return _etag(response, updated)


@router.delete("/objectives/{objective_id}", response_model=ObjectiveRead)
async def retire_objective(
    objective_id: str,
    rt: StateDep,
    principal: WriterDep,
    scope: ScopeDep,
    response: Response,
    reason: Annotated[str, Query(min_length=1, max_length=2000, description="Why.")],
    version: Annotated[int | None, Query(ge=1)] = None,
    if_match: IfMatch = None,
) -> ObjectiveRead:
    """Retire the objective (history is kept; its targets are published as retired)."""
    scope.check_unlimited("objective_id", NO_WRITE)
    expected = expected_version(if_match, version)
    async with rt.write() as session:
        retired = await rt.service.retire(
            session, objective_id, expected_version=expected, author=principal.name,
            reason=reason, author_subject=principal.subject,
        )  # fmt: skip
    return _etag(response, retired)


@router.get("/objectives/{objective_id}/history", response_model=list[VersionRead])
async def objective_history(
    objective_id: str,
    rt: StateDep,
    _: ReaderDep,
    scope: ScopeDep,
    response: Response,
    cursor: paging.SeqCursorParam = None,
    limit: paging.LimitParam = paging.DEFAULT_LIMIT,
) -> list[VersionRead]:
    """The audit trail, oldest version first, paged by version."""
    async with rt.read() as session:
        if _scoped(await rt.service.get(session, objective_id), scope) is None:
            raise OutOfScope("objective_id")
        rows = await rt.service.history(session, objective_id, cursor=cursor, limit=limit + 1)
    rows = paging.page(rows, limit, lambda v: (v.version, v.objective_id), response)
    return [_scoped_version(v, scope) for v in rows]


@router.get("/targets", response_model=list[TargetRead], tags=["targets"])
async def list_targets(
    rt: StateDep,
    _: ReaderDep,
    scope: ScopeDep,
    indicator: Annotated[str | None, Query(max_length=100)] = None,
    segment: Annotated[Segment | None, Query()] = None,
    active_on: date | None = None,
) -> list[TargetRead]:
    """Active targets of active objectives: what the alert service and dashboards read."""
    if segment is not None:
        scope.check(segment, "query.segment")
    async with rt.read() as session:
        found = await rt.service.targets(
            session, indicator=indicator, segment=segment, active_on=active_on
        )
    return scope.filter(found, lambda t: t.segment)
