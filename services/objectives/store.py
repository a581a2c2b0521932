"""The objectives' database: its engine and migrations; objectives and targets: validation,
versioned writes, audit rows and outbox events.

Every write takes one advisory lock per schema, so the overlap rule (no two active targets on
the same indicator and segment share a day) cannot be broken by two concurrent writers, and
outbox rows are enqueued in commit order. Writes are rare (a strategy changes a few times a
year), so serialising them costs nothing. Functions never commit: the caller owns the
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.envelope import FieldError, field_errors
from services.common.bus import event_message
from services.common.db import is_sqlite, migrate_service, open_service_engine
from services.common.errors import Conflict, Invalid, NotFound
from services.common.outbox import enqueue
from services.objectives import audit, events
from services.objectives.config import ObjectivesSettings
from services.objectives.models import SCHEMA, objectives, outbox, targets
from services.objectives.rules import (
    bounds,
    check_overlaps_within,
    check_recipients,
    check_target,
    overlaps,
    period,
)
from services.objectives.schemas import (
    ObjectiveCreate,
    ObjectiveFields,
    ObjectiveRead,
    ObjectiveUpdate,
    Status,
    TargetFields,
    TargetRead,
    VersionRead,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


async def migrate_schema(settings: ObjectivesSettings) -> None:
    await migrate_service(settings.database_url, settings.objectives_db_schema, MIGRATIONS_DIR)


def open_engine(settings: ObjectivesSettings) -> AsyncEngine:
    return open_service_engine(settings.database_url, settings.objectives_db_schema, SCHEMA)


@dataclass(frozen=True, slots=True)
class Desired:
    """The complete state an objective should have after a write."""

    fields: ObjectiveFields
    status: Status
    targets: list[tuple[str | None, TargetFields]]


class ObjectivesService:
    def __init__(
        self,
        *,
        topic: str,
        source: str,
        lock_name: str,
        recipient_domains: Collection[str] = (),
    ) -> None:
        self.topic = topic
        self.source = source
        self.lock_name = lock_name
        self.recipient_domains = frozenset(recipient_domains)
        """Domains e-mail recipients may be in; empty: any."""

    # --- reads ------------------------------------------------------------------------------------

    async def get(self, session: AsyncSession, objective_id: str) -> ObjectiveRead:
        row = (
            await session.execute(select(objectives).where(objectives.c.id == objective_id))
        ).first()
        if row is None:
            raise NotFound("objective_id", f"no objective {objective_id}")
        return await self._read(session, row)

    async def find_by_code(self, session: AsyncSession, code: str) -> ObjectiveRead | None:
        row = (await session.execute(select(objectives).where(objectives.c.code == code))).first()
        return None if row is None else await self._read(session, row)

    async def list_all(
        self, session: AsyncSession, status: Status | None = None
    ) -> list[ObjectiveRead]:
        query = select(objectives).order_by(objectives.c.seq)
        if status is not None:
            query = query.where(objectives.c.status == status)
        return [await self._read(session, row) for row in (await session.execute(query)).all()]

    async def history(
        self,
        session: AsyncSession,
        objective_id: str,
        *,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> list[VersionRead]:
        await self.get(session, objective_id)
        return await audit.history(session, objective_id, cursor=cursor, limit=limit)

    async def targets(
        self,
        session: AsyncSession,
        *,
        indicator: str | None = None,
        segment: str | None = None,
        active_on: date | None = None,
    ) -> list[TargetRead]:
        """Active targets of active objectives (what the alert service evaluates)."""
        o, t = objectives.c, targets.c
        query = (
            select(targets, o.code.label("objective_code"))
            .join(objectives, o.id == t.objective_id)
            .where(o.status == "active", t.status == "active")
            .order_by(t.indicator, t.segment, t.effective_from)
        )
        if indicator is not None:
            query = query.where(t.indicator == indicator)
        if segment is not None:
            query = query.where(t.segment == segment)
        if active_on is not None:
            query = query.where(
                t.effective_from <= active_on,
                (t.effective_to.is_(None)) | (t.effective_to >= active_on),
            )
        rows = (await session.execute(query)).all()
        return [_target(row, row.objective_code, "active") for row in rows]

    async def _read(self, session: AsyncSession, row: Row[Any]) -> ObjectiveRead:
        t = targets.c
        target_rows = await session.execute(
            select(targets)
            .where(t.objective_id == row.id, t.status == "active")
            .order_by(t.position)
        )
        return ObjectiveRead(
            id=row.id,
            code=row.code,
            name=row.name,
            description=row.description,
            dimension=row.dimension,
            owner=row.owner,
            rationale=row.rationale,
            status=row.status,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            targets=[_target(tr, row.code, row.status) for tr in target_rows],
        )

    # --- writes -----------------------------------------------------------------------------------

    async def create(
        self,
        session: AsyncSession,
        data: ObjectiveCreate,
        *,
        author: str,
        author_subject: str | None = None,
    ) -> ObjectiveRead:
        await self._lock(session)
        fields = ObjectiveFields.model_validate(
            data.model_dump(include=set(ObjectiveFields.model_fields))
        )
        desired = Desired(fields, "active", [(None, t) for t in data.targets])
        objective_id = str(uuid.uuid4())
        await self._validate(session, objective_id, desired, known_ids=set())
        now = datetime.now(UTC)
        seq = await session.scalar(select(func.coalesce(func.max(objectives.c.seq), 0)))
        await session.execute(
            objectives.insert().values(
                id=objective_id,
                seq=int(seq or 0) + 1,
                status="active",
                version=1,
                created_at=now,
                updated_at=now,
                **fields.model_dump(),
            )
        )
        return await self._finish(
            session, objective_id, None, desired, "created", (author, author_subject), data.reason,
            now,
        )  # fmt: skip

    async def update(
        self,
        session: AsyncSession,
        objective_id: str,
        patch: ObjectiveUpdate,
        *,
        expected_version: int,
        author: str,
        author_subject: str | None = None,
    ) -> ObjectiveRead:
        await self._lock(session)
        before = await self.get(session, objective_id)
        if before.version != expected_version:
            stale = f"objective {objective_id} is at version {before.version}, not "
            stale += f"{expected_version}: reload and retry"
            raise Conflict("version", stale, "stale version", etag=str(before.version))
        changes = patch.model_dump(exclude_unset=True, exclude={"targets", "version", "reason"})
        status = changes.pop("status", None) or before.status
        try:
            fields = ObjectiveFields.model_validate(
                {**before.model_dump(include=set(ObjectiveFields.model_fields)), **changes}
            )
        except ValidationError as exc:  # e.g. an explicit null for a required field
            raise Invalid(field_errors(exc)) from None
        wanted: list[tuple[str | None, TargetFields]] = (
            [
                (t.id, TargetFields.model_validate(t.model_dump(exclude={"id"})))
                for t in patch.targets
            ]
            if patch.targets is not None
            else [(t.id, _fields_of(t)) for t in before.targets]
        )
        desired = Desired(fields, status, wanted)
        await self._validate(session, objective_id, desired, {t.id for t in before.targets})
        if _same(before, desired):
            return before  # nothing to change: no version, no event
        action: audit.Action = "updated"
        if status != before.status:
            action = "retired" if status == "retired" else "reactivated"
        now = datetime.now(UTC)
        await session.execute(
            update(objectives)
            .where(objectives.c.id == objective_id)
            .values(
                status=status, version=before.version + 1, updated_at=now, **fields.model_dump()
            )
        )
        return await self._finish(
            session, objective_id, before, desired, action, (author, author_subject),
            patch.reason, now,
        )  # fmt: skip

    async def retire(
        self,
        session: AsyncSession,
        objective_id: str,
        *,
        expected_version: int,
        author: str,
        reason: str,
        author_subject: str | None = None,
    ) -> ObjectiveRead:
        patch = ObjectiveUpdate(status="retired", reason=reason)
        return await self.update(
            session, objective_id, patch, expected_version=expected_version, author=author,
            author_subject=author_subject,
        )  # fmt: skip

    async def _lock(self, session: AsyncSession) -> None:
        if not is_sqlite(session):
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": self.lock_name}
            )

    async def _finish(
        self,
        session: AsyncSession,
        objective_id: str,
        before: ObjectiveRead | None,
        desired: Desired,
        action: audit.Action,
        author: tuple[str, str | None],
        reason: str,
        now: datetime,
    ) -> ObjectiveRead:
        """Write the targets, the audit row and the events of the targets whose state changed."""
        kept = await self._write_targets(session, objective_id, before, desired)
        after = await self.get(session, objective_id)
        before_doc = before.model_dump(mode="json") if before else None
        await audit.record(
            session,
            objective_id=objective_id,
            version=after.version,
            action=action,
            author=author[0],
            author_subject=author[1],
            changed_at=now,
            reason=reason,
            before=before_doc,
            after=after.model_dump(mode="json"),
        )
        old, new = events.states(before), events.states(after)
        if before is not None:
            for target in before.targets:
                if target.id not in kept:  # removed from the objective
                    new[target.id] = events.payload(after, target.id, target, retired=True)
        for target_id, state in new.items():
            if events.changed(old.get(target_id), state):
                message = event_message(
                    self.topic,
                    source=self.source,
                    event_type=events.TYPE,
                    time=now,
                    subject=target_id,
                    data=state,
                )
                await enqueue(session, outbox, message)
        return after

    async def _write_targets(
        self,
        session: AsyncSession,
        objective_id: str,
        before: ObjectiveRead | None,
        desired: Desired,
    ) -> set[str]:
        t = targets.c
        kept: set[str] = set()
        for position, (target_id, target) in enumerate(desired.targets):
            values = {"position": position, "status": "active", **_columns(target)}
            if target_id is None:
                await session.execute(
                    targets.insert().values(
                        id=str(uuid.uuid4()), objective_id=objective_id, **values
                    )
                )
            else:
                kept.add(target_id)
                await session.execute(update(targets).where(t.id == target_id).values(**values))
        removed = {x.id for x in before.targets} - kept if before else set()
        if removed:
            await session.execute(update(targets).where(t.id.in_(removed)).values(status="retired"))
        return kept

    # --- validation -------------------------------------------------------------------------------

    async def _validate(
        self, session: AsyncSession, objective_id: str, desired: Desired, known_ids: set[str]
    ) -> None:
        errors: list[FieldError] = []
        taken = await session.scalar(
            select(objectives.c.id).where(
                objectives.c.code == desired.fields.code, objectives.c.id != objective_id
            )
        )
        if taken is not None:
            errors.append(FieldError("code", f"already used by objective {taken}"))
        seen: set[str] = set()
        for i, (target_id, target) in enumerate(desired.targets):
            if target_id is not None and (target_id not in known_ids or target_id in seen):
                errors.append(
                    FieldError(f"targets.{i}.id", "not an active target of this objective")
                )
            if target_id is not None:
                seen.add(target_id)
            errors += check_target(target, f"targets.{i}")
            errors += check_recipients(target, f"targets.{i}", self.recipient_domains)
        if desired.status == "active":
            listed = [target for _, target in desired.targets]
            errors += check_overlaps_within(listed, "targets")
            errors += await self._overlaps_elsewhere(session, objective_id, listed)
        if errors:
            raise Invalid(errors)

    async def _overlaps_elsewhere(
        self, session: AsyncSession, objective_id: str, listed: list[TargetFields]
    ) -> list[FieldError]:
        o, t = objectives.c, targets.c
        pairs = {(x.indicator, x.segment) for x in listed}
        if not pairs:
            return []
        rows = (
            await session.execute(
                select(t.indicator, t.segment, t.effective_from, t.effective_to, o.code)
                .join(objectives, o.id == t.objective_id)
                .where(
                    o.status == "active",
                    t.status == "active",
                    o.id != objective_id,
                    t.indicator.in_({i for i, _ in pairs}),
                )
            )
        ).all()
        errors = []
        for i, x in enumerate(listed):
            for indicator, segment, start, end, code in rows:
                if (indicator, segment) == (x.indicator, x.segment) and overlaps(
                    x.effective_from, x.effective_to, start, end
                ):
                    errors.append(
                        FieldError(
                            f"targets.{i}.effective_from",
                            f"overlaps the {indicator} / {segment} target of objective {code} "
                            f"({period(start, end)}): one target per indicator and segment "
                            "at a time",
                        )
                    )
        return errors


def _same(before: ObjectiveRead, desired: Desired) -> bool:
    now = [(t.id, _fields_of(t)) for t in before.targets]
    fields = ObjectiveFields.model_validate(
        before.model_dump(include=set(ObjectiveFields.model_fields))
    )
    return fields == desired.fields and before.status == desired.status and now == desired.targets


def _fields_of(target: TargetFields) -> TargetFields:
    return TargetFields.model_validate(target.model_dump(include=set(TargetFields.model_fields)))


def _columns(target: TargetFields) -> dict[str, Any]:
    values = target.model_dump(exclude={"threshold", "warning_threshold"})
    values["threshold"] = [str(b) for b in bounds(target.threshold)]
    values["warning_threshold"] = (
        None
        if target.warning_threshold is None
        else [str(b) for b in bounds(target.warning_threshold)]
    )
    return values


def _threshold(stored: list[str] | None, direction: str) -> Decimal | list[Decimal] | None:
    if stored is None:
        return None
    values = [Decimal(v) for v in stored]
    return values if direction == "within" else values[0]


def _target(row: Row[Any], objective_code: str, status: Status) -> TargetRead:
    return TargetRead(
        id=row.id,
        objective_id=row.objective_id,
        objective_code=objective_code,
        status=status,
        indicator=row.indicator,
        segment=row.segment,
        direction=row.direction,
        threshold=_threshold(row.threshold, row.direction),
        warning_threshold=_threshold(row.warning_threshold, row.direction),
        for_days=row.for_days,
        severity=row.severity,
        notify=row.notify,
        effective_from=row.effective_from,
        effective_to=row.effective_to,
        rationale=row.rationale,
    )
