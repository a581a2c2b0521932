"""Corrective actions: what a person said they would do about an alert or a target, whether they
did it, and whether it worked.

An action is recorded on an alert or on a target, with the indicator and segment it should move
(by default the alert's or target's). Recording it also records the numbers it will be judged
against: the indicator's latest value (``opened_value``), the target's line (``direction``,
``lower``, ``upper``) and the bound nearest that value (``target_threshold``), so a later change
of the target does not move the goalposts of an action already under way.

Statuses: ``open`` → ``done`` | ``cancelled``; ``open`` → ``overdue`` (by the tick, once the due
date has passed) → ``done`` | ``cancelled``. Every change is a row of ``action_history`` (who,
when, which fields from what to what) and a ``spm.action.changed.v1`` event in the same
transaction (the outbox).

The judgement (:func:`judge`) runs on the service's tick once a done action's review date has
come; see docs/actions.md for the rule and what "too early to tell" means.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import ActionChanged, TargetChanged
from services.alerts import models as m
from services.alerts import store
from services.alerts.rules import Bounds, line
from services.alerts.targets import latest_value
from services.common.bus import event_message
from services.common.errors import Conflict, Unprocessable
from services.common.outbox import enqueue

EVENT_TYPE = "spm.action.changed.v1"
SYSTEM = "system"
"""Who the history names for changes the service makes itself (overdue, judgement)."""

Status = Literal["open", "done", "cancelled", "overdue"]
Effectiveness = Literal["effective", "not_effective", "too_early"]
Change = Literal["created", "updated", "overdue", "judged"]
LIVE: tuple[Status, ...] = ("open", "overdue")
"""Statuses of an action still to be done."""
EDITABLE = ("title", "owner", "owner_notify", "due_date", "review_date", "indicator", "segment")


@dataclass(frozen=True, slots=True)
class Origin:
    """What an action is recorded on, and the line it is judged against."""

    alert_id: str | None
    target_id: str | None
    objective_id: str | None
    indicator: str
    segment: str
    direction: str | None
    lower: Decimal | None
    upper: Decimal | None

    @property
    def bounds(self) -> Bounds:
        return Bounds(self.lower, self.upper)


def origin_of_row(row: Mapping[str, Any]) -> Origin:
    """The origin an action was recorded with (to move it to another indicator or segment)."""
    return Origin(
        row["alert_id"], row["target_id"], row["objective_id"], row["indicator"], row["segment"],
        row["direction"], store.number(row["lower"]), store.number(row["upper"]),
    )  # fmt: skip


def _origin_of_target(target: TargetChanged, alert_id: str | None = None) -> Origin:
    bounds = line(target)
    return Origin(
        alert_id, target.target_id, target.objective_id, target.indicator, target.segment,
        target.direction, bounds.lower, bounds.upper,
    )  # fmt: skip


async def _target(session: AsyncSession, target_id: str) -> TargetChanged | None:
    data = await session.scalar(select(m.targets.c.data).where(m.targets.c.target_id == target_id))
    return None if data is None else TargetChanged.model_validate(data)


async def origin_of_target(session: AsyncSession, target_id: str) -> Origin | None:
    target = await _target(session, target_id)
    return None if target is None else _origin_of_target(target)


async def origin_of_alert(session: AsyncSession, alert_id: str) -> Origin | None:
    """The alert's target line; if the target has since gone, the alert's own threshold."""
    row = (await session.execute(select(m.alerts).where(m.alerts.c.id == alert_id))).first()
    if row is None:
        return None
    alert = row._mapping
    target = await _target(session, alert["target_id"])
    if target is not None and (target.indicator, target.segment) == (
        alert["indicator"],
        alert["segment"],
    ):
        return _origin_of_target(target, alert_id)
    direction = alert["detail"].get("direction")
    threshold = store.number(alert["threshold"])
    return Origin(
        alert_id, alert["target_id"], alert["objective_id"], alert["indicator"], alert["segment"],
        direction, threshold if direction == "at_least" else None,
        threshold if direction == "at_most" else None,
    )  # fmt: skip


async def retarget(session: AsyncSession, origin: Origin, indicator: str, segment: str) -> Origin:
    """The origin moved to another indicator or segment: that pair's own target line if one is
    stored (e.g. the branch's target rather than the institution's), else the same line."""
    if (indicator, segment) == (origin.indicator, origin.segment):
        return origin
    c = m.targets.c
    data = await session.scalar(
        select(c.data).where(c.indicator == indicator, c.segment == segment).order_by(c.target_id)
    )
    if data is not None:
        found = _origin_of_target(TargetChanged.model_validate(data), origin.alert_id)
        return Origin(
            origin.alert_id, origin.target_id or found.target_id, origin.objective_id,
            indicator, segment, found.direction, found.lower, found.upper,
        )  # fmt: skip
    return Origin(
        origin.alert_id, origin.target_id, origin.objective_id, indicator, segment,
        origin.direction, origin.lower, origin.upper,
    )  # fmt: skip


def judge(
    bounds: Bounds, opened: Decimal | None, threshold: Decimal | None, value: Decimal
) -> Effectiveness:
    """``effective`` when ``value`` is back on target, or when it has covered at least half the
    distance between ``opened`` and ``threshold`` (towards the target); else ``not_effective``.

    Without an opening value (nothing was measured when the action was recorded) only "back on
    target" counts.
    """
    if not bounds.defined or not bounds.beyond(value):
        return "effective"
    if opened is None or threshold is None:
        return "not_effective"
    start = abs(opened - threshold)
    remaining = abs(value - threshold)
    return "effective" if start > 0 and remaining * 2 <= start else "not_effective"


def too_early(done_at: datetime | None, latest: tuple[date, Decimal] | None) -> bool:
    """No value of the indicator for a business day after the day the action was done: the
    numbers cannot show its effect yet."""
    return done_at is None or latest is None or latest[0] <= done_at.date()


async def announce(
    session: AsyncSession,
    pub: store.Publisher,
    row: Mapping[str, Any],
    change: Change,
    by: str,
    now: datetime,
) -> None:
    """Enqueue spm.action.changed.v1 (the full action) in the caller's transaction."""
    data = ActionChanged(
        action_id=row["id"], change=change, alert_id=row["alert_id"], target_id=row["target_id"],
        objective_id=row["objective_id"], indicator=row["indicator"], segment=row["segment"],
        title=row["title"][:500], owner=row["owner"], status=row["status"],
        due_date=row["due_date"], review_date=row["review_date"], done_at=row["done_at"],
        effectiveness=row["effectiveness"], opened_value=store.number(row["opened_value"]),
        judged_value=store.number(row["judged_value"]),
        target_threshold=store.number(row["target_threshold"]), changed_by=by[:200],
        changed_at=now,
    )  # fmt: skip
    message = event_message(
        pub.topic, source=pub.source, event_type=EVENT_TYPE, time=now, subject=row["id"], data=data
    )
    await enqueue(session, m.outbox, message)


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


async def record(
    session: AsyncSession,
    action_id: str,
    event: str,
    by: str,
    now: datetime,
    changes: Mapping[str, tuple[Any, Any]],
    note: str | None = None,
) -> None:
    """One history row: ``changes`` is field → (before, after)."""
    await session.execute(
        insert(m.action_history).values(
            action_id=action_id, at=now, by=by[:200], event=event, note=note,
            changes={k: {"before": _jsonable(b), "after": _jsonable(a)}
                     for k, (b, a) in changes.items()},
        )
    )  # fmt: skip


async def _opening(session: AsyncSession, origin: Origin) -> dict[str, Any]:
    """The numbers an action is judged with: the line of ``origin``, the latest value of its
    indicator and segment, and the bound nearest that value."""
    latest = await latest_value(session, origin.indicator, origin.segment)
    opened = latest[1] if latest else None
    bounds = origin.bounds
    threshold = bounds.nearest(opened) if opened is not None else (bounds.lower or bounds.upper)
    return {
        "target_id": origin.target_id,
        "direction": origin.direction,
        "lower": store.text(bounds.lower),
        "upper": store.text(bounds.upper),
        "opened_value": store.text(opened),
        "opened_as_of": latest[0] if latest else None,
        "target_threshold": store.text(threshold),
    }


async def create(
    session: AsyncSession,
    pub: store.Publisher,
    origin: Origin,
    fields: Mapping[str, Any],
    by: str,
    now: datetime,
) -> dict[str, Any]:
    """Record a new open action with its opening value and the target line of ``origin``."""
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "alert_id": origin.alert_id,
        "target_id": origin.target_id,
        "objective_id": origin.objective_id,
        "indicator": origin.indicator,
        "segment": origin.segment,
        "title": fields["title"],
        "owner": fields["owner"],
        "owner_notify": fields.get("owner_notify"),
        "status": "open",
        "due_date": fields["due_date"],
        "review_date": fields["review_date"],
        "created_by": by[:200],
        "created_at": now,
        "updated_at": now,
        "done_at": None,
        "overdue_at": None,
        "owner_notified_at": None,
        "manager_notified_at": None,
        **await _opening(session, origin),
        "effectiveness": None,
        "judged_value": None,
        "judged_as_of": None,
        "judged_at": None,
    }
    await session.execute(insert(m.actions).values(**row))
    shown = ("title", "owner", "status", "due_date", "review_date", "indicator", "segment",
             "opened_value", "target_threshold")  # fmt: skip
    await record(session, row["id"], "created", by, now, {k: (None, row[k]) for k in shown})
    await announce(session, pub, row, "created", by, now)
    return row


async def load(
    session: AsyncSession, action_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    stmt = select(m.actions).where(m.actions.c.id == action_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    return None if row is None else dict(row._mapping)


async def history(session: AsyncSession, action_id: str) -> list[dict[str, Any]]:
    c = m.action_history.c
    rows = await session.execute(
        select(c.at, c.by, c.event, c.changes, c.note)
        .where(c.action_id == action_id)
        .order_by(c.id)
    )
    return [dict(r._mapping) for r in rows.all()]


def _status_changes(row: Mapping[str, Any], status: Status, now: datetime) -> dict[str, Any]:
    current = row["status"]
    if status == current:
        return {}
    if status == "overdue":
        raise Unprocessable("status", "overdue is set by the service when the due date passes")
    if status in ("done", "cancelled") and current not in LIVE:
        raise Conflict("status", f"a {current} action cannot become {status}; reopen it first")
    if status == "done":
        return {"status": "done", "done_at": now}
    if status == "cancelled":
        return {"status": "cancelled"}
    # reopened: the judgement (if any) no longer stands; the tick decides about overdue again
    return {"status": "open", "done_at": None, "overdue_at": None, "owner_notified_at": None,
            "manager_notified_at": None, **_unjudged(row)}  # fmt: skip


def _unjudged(row: Mapping[str, Any]) -> dict[str, Any]:
    if row["effectiveness"] is None:
        return {}
    return {"effectiveness": None, "judged_value": None, "judged_as_of": None, "judged_at": None}


async def change(
    session: AsyncSession,
    pub: store.Publisher,
    row: dict[str, Any],
    fields: Mapping[str, Any],
    by: str,
    now: datetime,
    *,
    origin: Origin | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Apply a person's change (``fields`` holds only what they sent); ``origin`` when the
    indicator or segment moved (new line to judge against). Raises :class:`Conflict` (409) or
    :class:`Unprocessable` (422)."""
    changes: dict[str, Any] = {k: v for k, v in fields.items() if k in EDITABLE and row[k] != v}
    if "status" in fields:
        changes |= _status_changes(row, fields["status"], now)
    due = changes.get("due_date", row["due_date"])
    review = changes.get("review_date", row["review_date"])
    if review < due:
        raise Unprocessable("review_date", "the review date is before the due date")
    moved = "due_date" in changes and due >= now.date()
    if row["status"] == "overdue" and changes.get("status") is None and moved:
        # a new due date ahead: no longer overdue
        changes |= {"status": "open", "overdue_at": None, "owner_notified_at": None,
                    "manager_notified_at": None}  # fmt: skip
    if "review_date" in changes and row["status"] == "done":
        changes |= _unjudged(row)  # judged again on the new review date
    if origin is not None:  # another indicator or segment: its line and its opening value
        changes |= await _opening(session, origin)
    if not changes and note is None:
        return row
    before = {k: row[k] for k in changes}
    row.update(changes)
    row["updated_at"] = now
    await session.execute(
        update(m.actions).where(m.actions.c.id == row["id"]).values(**changes, updated_at=now)
    )
    await record(
        session, row["id"], "updated", by, now, {k: (before[k], row[k]) for k in changes}, note
    )
    await announce(session, pub, row, "updated", by, now)
    return row


async def mark_overdue(
    session: AsyncSession, pub: store.Publisher, row: dict[str, Any], now: datetime
) -> None:
    await session.execute(
        update(m.actions)
        .where(m.actions.c.id == row["id"])
        .values(status="overdue", overdue_at=now, updated_at=now)
    )
    await record(session, row["id"], "overdue", SYSTEM, now, {"status": (row["status"], "overdue")},
                 f"due {row['due_date'].isoformat()} and not done")  # fmt: skip
    row.update(status="overdue", overdue_at=now, updated_at=now)
    await announce(session, pub, row, "overdue", SYSTEM, now)


async def judge_now(
    session: AsyncSession, pub: store.Publisher, row: dict[str, Any], now: datetime
) -> Effectiveness:
    """Compare the latest value with the line recorded at creation, and record the verdict."""
    latest = await latest_value(session, row["indicator"], row["segment"])
    bounds = Bounds(store.number(row["lower"]), store.number(row["upper"]))
    verdict: Effectiveness
    if too_early(row["done_at"], latest):
        verdict = "too_early"
    else:
        assert latest is not None  # noqa: S101 - too_early() is true without a value
        verdict = judge(
            bounds, store.number(row["opened_value"]), store.number(row["target_threshold"]),
            latest[1],
        )  # fmt: skip
    values = {
        "effectiveness": verdict,
        "judged_value": store.text(latest[1]) if latest else None,
        "judged_as_of": latest[0] if latest else None,
        "judged_at": now,
    }
    await session.execute(
        update(m.actions).where(m.actions.c.id == row["id"]).values(**values, updated_at=now)
    )
    note = (
        f"value {values['judged_value']} on {latest[0].isoformat()}" if latest else "no value yet"
    ) + (f"; opened at {row['opened_value']}, target line {row['target_threshold']}")
    await record(
        session, row["id"], "judged", SYSTEM, now,
        {"effectiveness": (row["effectiveness"], verdict)}, note,
    )  # fmt: skip
    row.update(values, updated_at=now)
    await announce(session, pub, row, "judged", SYSTEM, now)
    return verdict


async def matching(session: AsyncSession, *conditions: ColumnElement[bool]) -> list[dict[str, Any]]:
    """The actions that meet every one of ``conditions``, oldest recorded first."""
    stmt = select(m.actions).where(*conditions).order_by(m.actions.c.created_at)
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]


async def noted(
    session: AsyncSession, row: dict[str, Any], column: str, who: str, now: datetime
) -> None:
    """Record that ``who`` (owner / manager) was told the action is overdue."""
    await session.execute(
        update(m.actions).where(m.actions.c.id == row["id"]).values({column: now})
    )
    row[column] = now
    await record(session, row["id"], "notified", SYSTEM, now, {column: (None, now)}, who)
