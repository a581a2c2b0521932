"""What a batch of each input topic does to the alert state."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager

from opentelemetry import trace
from opentelemetry.trace import Span
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CanonicalEvent
from contracts.events import IndicatorChanged, TargetChanged
from services.alerts import targets
from services.alerts.evaluation import (
    Evaluator,
    advance_business_date,
    business_date,
    targeted,
)
from services.common.telemetry import joined

log = logging.getLogger(__name__)
tracer = trace.get_tracer("spm.alerts.evaluation")


class Handlers:
    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    async def indicators(self, session: AsyncSession, events: Sequence[CanonicalEvent]) -> None:
        """Record every value, evaluate each watched one in order, then the no-data rule if
        anything changed.

        Values no target watches are recorded too (in one statement), not evaluated: a target
        can reach this service after the value it watches (another topic, another consumer),
        and is then judged on it at once; older unwatched values are pruned each new day."""
        values = [e.data for e in events if isinstance(e.data, IndicatorChanged)]
        if not values:
            return
        watched = await targeted(session)
        applied: set[tuple[str, str]] = set()
        for event in events:
            data = event.data
            if isinstance(data, IndicatorChanged) and (data.code, data.segment) in watched:
                with _evaluation(event, data.code, data.segment):
                    await self.evaluator.apply_indicator(session, data)
                applied.add((data.code, data.segment))
        await self.evaluator.observe(
            session, [v for v in values if (v.code, v.segment) not in watched]
        )
        today = max(v.as_of for v in values)
        if await advance_business_date(session, today):
            await self.evaluator.prune_unwatched(session, today)
            await self.evaluator.check_nodata(session)  # a new day: every target may be stale
        elif applied:
            await self.evaluator.check_nodata(session, only=applied)  # these came back

    async def targets(self, session: AsyncSession, events: Sequence[CanonicalEvent]) -> None:
        for event in events:
            data = event.data
            if isinstance(data, TargetChanged):
                with _evaluation(event, data.indicator, data.segment):
                    await apply_targets(session, self.evaluator, [data])


def _evaluation(event: CanonicalEvent, code: str, segment: str) -> AbstractContextManager[Span]:
    """The span of judging one value (or target): a child of the trace the record carries, so
    an alert (which keeps this span's ``traceparent`` in its detail) and its notifications
    continue the trace from the ingest request."""
    parent, _ = joined([event.traceparent])
    return tracer.start_as_current_span(
        "alerts.evaluate",
        context=parent,
        attributes={"spm.indicator": code, "spm.segment": segment, "spm.event_type": event.type},
    )


async def apply_targets(
    session: AsyncSession, evaluator: Evaluator, states: Sequence[object]
) -> None:
    """Keep the targets table current; a retired target is removed and its alerts resolve."""
    today = await business_date(session)
    now = evaluator.clock.now()
    for data in states:
        if not isinstance(data, TargetChanged):
            continue
        if data.status == "retired":
            await targets.remove_target(session, data.target_id)
            await evaluator.resolve_target(session, data.target_id)
        else:
            await targets.upsert_target(session, data, today, now)
            await evaluator.apply_target(session, data)
