"""Targets and indicator values come on different topics, read by different consumers: a value
that reaches the service before the target watching it is judged when the target arrives, and
the values no target watches are kept only as long as they can matter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from services.alerts import models as m
from tests.alerts.harness import Harness, business_days, target
from tests.alerts.servers import SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"


async def test_a_value_before_its_target_is_judged_when_the_target_arrives(
    h: Harness, smtp: SmtpServer
) -> None:
    [day] = business_days(1)
    await h.values(day, (CODE, "branch:B1", "0.40"), (CODE, "branch:B2", "0.90"))
    assert await h.alerts() == []
    await h.targets(
        target("t-b1", segment="branch:B1", for_days=0, severity="critical"),
        target("t-b2", segment="branch:B2", for_days=0),
    )
    [alert] = await h.alerts("breach")
    assert alert["segment"] == "branch:B1" and alert["state"] == "firing"
    assert alert["value"] == "0.40"
    await h.settle()
    assert len(smtp.messages) == 1 and "Branch B1" in smtp.messages[0]["Subject"]


async def _observed(h: Harness) -> set[tuple[str, str, str]]:
    c = m.observations.c
    async with h.service.db() as session:
        rows = await session.execute(select(c.code, c.segment, c.as_of))
    return {(code, segment, as_of.isoformat()) for code, segment, as_of in rows.all()}


async def test_unwatched_values_are_pruned_to_the_trend_window_keeping_the_newest(
    h: Harness,
) -> None:
    await h.targets(target("t-all", segment="all", for_days=0, lower="0.10"))
    first = business_days(1)[0]
    later = first + timedelta(days=h.settings.alerts_trend_days + 7)
    await h.values(first, (CODE, "all", "0.50"), (CODE, "branch:B1", "0.40"))
    await h.values(first, (CODE, "branch:B2", "0.30"))  # this pair has no newer value
    await h.values(later, (CODE, "branch:B1", "0.45"))  # the new day: the prune runs
    await h.values(later, (CODE, "all", "0.50"))
    kept = await _observed(h)
    assert (CODE, "branch:B1", first.isoformat()) not in kept  # unwatched, superseded, old
    assert (CODE, "branch:B1", later.isoformat()) in kept
    assert (CODE, "branch:B2", first.isoformat()) in kept  # its newest: a target may come
    assert (CODE, "all", first.isoformat()) in kept  # watched: the trend's history
