"""Evaluation: an indicator value (or a passing business day) moves alerts through their states.

Per target and segment, three rules look at each value — ``breach`` (the target line, with
``for_days`` and hysteresis), ``warning`` (the warning band, same timing) and ``trend`` (a
least-squares fit over recent business days heading for the line within the horizon) — and a
fourth, ``nodata``, at the business date: the indicator has not updated for too long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import IndicatorChanged, TargetChanged
from services.alerts import models as m
from services.alerts import store
from services.alerts.clock import Clock
from services.alerts.config import AlertSettings
from services.alerts.rules import (
    Bounds,
    Calendar,
    Condition,
    Current,
    Hysteresis,
    Kind,
    State,
    band,
    kind_severity,
    line,
    step,
    trend,
)
from services.alerts.targets import (
    active_targets,
    all_active_targets,
    effective,
    last_good_as_of,
    last_received_at,
    latest_value,
)
from services.common.db import upsert
from services.common.telemetry import current_traceparent


@dataclass(frozen=True, slots=True)
class Rules:
    calendar: Calendar
    hysteresis: Hysteresis
    trend_days: int
    trend_min_points: int
    trend_horizon: int
    nodata_days: int
    nodata_grace: timedelta

    @classmethod
    def of(cls, s: AlertSettings) -> Rules:
        return cls(
            Calendar(frozenset(s.alerts_business_weekdays), frozenset(s.alerts_holidays)),
            Hysteresis(
                Decimal(str(s.alerts_hysteresis_relative)),
                Decimal(str(s.alerts_hysteresis_absolute)),
            ),
            s.alerts_trend_days,
            s.alerts_trend_min_points,
            s.alerts_trend_horizon_days,
            s.alerts_nodata_days,
            timedelta(seconds=s.alerts_nodata_grace_s),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    cond: Condition
    value: Decimal | None
    threshold: Decimal | None
    detail: dict[str, Any]


class Evaluator:
    def __init__(self, rules: Rules, publisher: store.Publisher, clock: Clock) -> None:
        self.rules = rules
        self.publisher = publisher
        self.clock = clock

    async def apply_indicator(self, session: AsyncSession, data: IndicatorChanged) -> None:
        """Record the value, then evaluate every target on this indicator and segment."""
        await self.observe(session, [data])
        await self.judge(session, data)

    async def judge(self, session: AsyncSession, data: IndicatorChanged) -> None:
        """Evaluate every target on this (already observed) indicator value and segment."""
        if data.value is None:
            return  # no value today: the nodata rule watches for staleness
        figures = {  # carried into the alert so notifications can show what the value is made of
            name: str(amount)
            for name, amount in (("numerator", data.numerator), ("denominator", data.denominator))
            if amount is not None
        }
        for target in await active_targets(session, data.code, data.segment, data.as_of):
            await self._evaluate_target(session, target, data.as_of, data.value, figures)

    async def apply_target(self, session: AsyncSession, target: TargetChanged) -> None:
        """A new or changed target is judged at once on the latest value, not at the next one
        (targets and values arrive on different topics, in either order)."""
        latest = await latest_value(session, target.indicator, target.segment)
        if latest is not None and effective(target, latest[0]):
            await self._evaluate_target(session, target, latest[0], latest[1])

    async def _evaluate_target(
        self,
        session: AsyncSession,
        target: TargetChanged,
        as_of: date,
        value: Decimal,
        figures: dict[str, str] | None = None,
    ) -> None:
        history = await self._history(session, target.indicator, target.segment, as_of)
        slope = self._trend(target, as_of, history)
        extra = {"slope_per_day": slope.detail.get("slope_per_day"), **(figures or {})}
        verdicts: dict[Kind, Verdict] = {"breach": self._beyond(line(target), target, value, extra)}
        if band(target).defined:
            verdicts["warning"] = self._beyond(band(target), target, value, extra)
        verdicts["trend"] = slope
        for kind, verdict in verdicts.items():
            await self.evaluate(session, target, kind, verdict, as_of)

    async def check_nodata(
        self, session: AsyncSession, *, only: set[tuple[str, str]] | None = None
    ) -> None:
        """Raise or clear ``nodata`` alerts against the newest business date seen (for the
        targets on ``only``'s (indicator, segment) pairs, when given)."""
        today = await business_date(session)
        if today is None:
            return
        limit = self.rules.nodata_days
        for target, first_seen in await all_active_targets(session, today):
            if only is not None and (target.indicator, target.segment) not in only:
                continue
            last = await last_good_as_of(session, target.indicator, target.segment)
            reference = last or first_seen or today
            stale = self.rules.calendar.between(reference, today)
            received = await last_received_at(session, target.indicator, target.segment)
            quiet = received is None or self.clock.now() - received >= self.rules.nodata_grace
            active = stale > limit and quiet
            verdict = Verdict(
                Condition(active, not active),
                None,
                None,
                {"last_update": reference.isoformat(), "stale_business_days": stale},
            )
            await self.evaluate(session, target, "nodata", verdict, today, for_days=0)

    def _beyond(
        self, bounds: Bounds, target: TargetChanged, value: Decimal, extra: dict[str, Any]
    ) -> Verdict:
        """The value against the target's line (a breach) or its warning band (a warning)."""
        return Verdict(
            Condition(bounds.beyond(value), bounds.back_within(value, self.rules.hysteresis)),
            value,
            bounds.nearest(value),
            {"direction": target.direction, **extra},
        )

    def _trend(
        self, target: TargetChanged, as_of: date, history: list[tuple[date, Decimal]]
    ) -> Verdict:
        bounds: Bounds = line(target)
        latest = history[-1][1] if history else None
        if len(history) < self.rules.trend_min_points or latest is None or bounds.beyond(latest):
            return Verdict(Condition(False, True), latest, None, {})
        xs = self.rules.calendar.index([d for d, _ in history], as_of)
        t = trend(xs, [float(v) for _, v in history], bounds)
        horizon = self.rules.trend_horizon
        heading = t.crosses_in is not None and t.crosses_in <= horizon
        # Hysteresis for trends: clear only once the crossing is well beyond the horizon.
        clear = t.crosses_in is None or t.crosses_in > horizon * 1.5
        detail = {
            "slope_per_day": round(t.slope, 8),
            "crosses_in_days": None if t.crosses_in is None else round(t.crosses_in, 1),
            "fit_days": len(history),
        }
        return Verdict(Condition(heading, clear), latest, bounds.nearest(latest), detail)

    async def evaluate(
        self,
        session: AsyncSession,
        target: TargetChanged,
        kind: Kind,
        verdict: Verdict,
        as_of: date,
        *,
        for_days: int | None = None,
    ) -> None:
        """Apply one rule's verdict on one business day to the alert of (target, segment, kind)."""
        fp = store.fingerprint(target.target_id, target.segment, kind)
        row = await store.active_alert(session, fp)
        if row is not None and as_of < row["as_of"]:
            return  # a late value for a day already passed: it cannot change the present
        current = Current(row["state"], row["since"], row["as_of"]) if row else None
        wait = target.for_days if for_days is None else for_days
        if kind == "trend":
            wait = 0
        move = step(current, verdict.cond, as_of, wait, self.rules.calendar)
        now = self.clock.now()
        severity = kind_severity(target, kind)
        since = row["since"] if row is not None and move != "none" else as_of
        detail = {
            **verdict.detail,
            "for_days": wait,
            "notify": list(target.notify),
            "business_days": self.rules.calendar.between(since, as_of),
        }
        traceparent = current_traceparent()
        if traceparent is not None:  # the evaluation's trace, continued by the notifications
            detail["traceparent"] = traceparent
        seen = {
            "value": store.text(verdict.value),
            "threshold": store.text(verdict.threshold),
            "as_of": as_of,
            "severity": severity,
            "detail": detail,
            "updated_at": now,
        }
        if move == "none":
            return
        if row is None:
            state: State = "firing" if move == "firing" else "pending"
            row = await store.open_alert(
                session, target, kind, state=state, severity=severity, value=verdict.value,
                threshold=verdict.threshold, as_of=as_of, detail=detail, now=now,
            )  # fmt: skip
            await store.announce(session, self.publisher, row, state, now)
            return
        if move == "stay":
            # the notifications continue the trace of the evaluation that moved the alert, not
            # of a later one that only saw it stay
            kept = (
                (row["detail"] or {}).get("traceparent")
                if isinstance(row["detail"], dict)
                else None
            )
            if kept is not None:
                seen["detail"] = {**detail, "traceparent": kept}
            await store.change_alert(session, row, **seen)
            return
        if move == "inactive":
            await store.drop_alert(session, row)
            await store.announce(session, self.publisher, row, "inactive", now)
            return
        if move == "firing":
            await store.change_alert(
                session, row, **seen, state="firing", fired_on=as_of, fired_at=now
            )
        else:
            await store.change_alert(
                session, row, **seen, state="resolved", resolved_on=as_of, resolved_at=now
            )
        await store.announce(session, self.publisher, row, row["state"], now)

    async def resolve_target(self, session: AsyncSession, target_id: str) -> None:
        """A retired or removed target: its active alerts resolve."""
        c = m.alerts.c
        rows = await session.execute(
            select(m.alerts).where(c.target_id == target_id, c.state.in_(store.ACTIVE))
        )
        now = self.clock.now()
        for raw in rows.all():
            row = dict(raw._mapping)
            if row["state"] == "pending":
                await store.drop_alert(session, row)
                await store.announce(session, self.publisher, row, "inactive", now)
                continue
            await store.change_alert(
                session, row, state="resolved", resolved_on=row["as_of"], resolved_at=now,
                updated_at=now, detail={**row["detail"], "reason": "target retired"},
            )  # fmt: skip
            await store.announce(session, self.publisher, row, "resolved", now)

    async def observe(self, session: AsyncSession, values: Sequence[IndicatorChanged]) -> None:
        """Record values, watched or not: a target that arrives after its indicator's value
        (targets and values come on different topics, in either order) is judged at once on
        it, with whatever history there is for the trend."""
        latest = {(v.code, v.segment, v.as_of): v for v in values}  # one row per key and batch
        if not latest:
            return
        stmt = upsert(session, m.observations)
        stmt = stmt.on_conflict_do_update(
            index_elements=[
                m.observations.c.code,
                m.observations.c.segment,
                m.observations.c.as_of,
            ],
            set_={"value": stmt.excluded.value, "received_at": stmt.excluded.received_at},
        )
        now = self.clock.now()
        await session.execute(
            stmt,
            [{"code": v.code, "segment": v.segment, "as_of": v.as_of,
              "value": store.text(v.value), "received_at": now} for v in latest.values()],
        )  # fmt: skip

    async def prune_unwatched(self, session: AsyncSession, today: date) -> None:
        """Drop values no target watches that are older than ``trend_days`` calendar days
        before ``today``, keeping each pair's newest (what a later target is judged on).
        Watched pairs prune themselves in :meth:`_history`."""
        o, t = m.observations.c, m.targets.c
        newer = m.observations.alias("newer")
        await session.execute(
            delete(m.observations).where(
                o.as_of < today - timedelta(days=self.rules.trend_days),
                ~exists().where(t.indicator == o.code, t.segment == o.segment),
                exists().where(
                    newer.c.code == o.code,
                    newer.c.segment == o.segment,
                    newer.c.as_of > o.as_of,
                ),
            )
        )

    async def _history(
        self, session: AsyncSession, code: str, segment: str, as_of: date
    ) -> list[tuple[date, Decimal]]:
        """The last ``trend_days`` non-null values up to ``as_of``, oldest first; prunes older."""
        c = m.observations.c
        rows = await session.execute(
            select(c.as_of, c.value)
            .where(c.code == code, c.segment == segment, c.as_of <= as_of, c.value.is_not(None))
            .order_by(c.as_of.desc())
            .limit(self.rules.trend_days)
        )
        points = [(d, Decimal(v)) for d, v in rows.all()]
        points.reverse()
        if len(points) == self.rules.trend_days:
            keep_from = points[0][0]
            await session.execute(
                delete(m.observations).where(
                    c.code == code, c.segment == segment, c.as_of < keep_from
                )
            )
        return points


async def business_date(session: AsyncSession) -> date | None:
    """The newest business date any indicator value was seen for."""
    value: date | None = await session.scalar(select(m.business_date.c.as_of))
    return value


async def advance_business_date(session: AsyncSession, as_of: date) -> bool:
    """Move the business date forward to ``as_of``; returns whether it moved."""
    current = await business_date(session)
    if current is not None and current >= as_of:
        return False
    stmt = upsert(session, m.business_date)
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.business_date.c.id], set_={"as_of": stmt.excluded.as_of}
    )
    await session.execute(stmt, [{"id": 1, "as_of": as_of}])
    return True


async def targeted(session: AsyncSession) -> set[tuple[str, str]]:
    """(indicator, segment) pairs some target watches: the only values worth evaluating."""
    c = m.targets.c
    return {(i, s) for i, s in (await session.execute(select(c.indicator, c.segment))).all()}
