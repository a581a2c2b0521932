"""Trend and no-data alerts on a running service."""

from __future__ import annotations

import pytest

from tests.alerts.harness import Harness, business_days, target
from tests.alerts.servers import SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"


async def test_trend_fires_before_the_line_is_crossed(h: Harness, smtp: SmtpServer) -> None:
    await h.targets(target(for_days=0))
    days = business_days(25)
    fired_at: float | None = None
    for i, day in enumerate(days):
        value = 0.80 - 0.01 * i  # steadily worsening: crosses 0.60 on day 21
        await h.values(day, (CODE, "all", f"{value:.2f}"))
        trend = [a for a in await h.alerts("trend") if a["state"] == "firing"]
        if trend and fired_at is None:
            fired_at = value
            assert await h.alerts("breach") == []
            assert trend[0]["detail"]["slope_per_day"] == pytest.approx(-0.01)
            assert trend[0]["detail"]["crosses_in_days"] <= 20
            await h.settle()
            assert len(smtp.messages) == 1
            assert "heading for its target line" in smtp.messages[0]["Subject"]
    assert fired_at is not None and fired_at > 0.60
    [breach] = await h.alerts("breach")
    assert breach["state"] == "firing"


async def test_nodata_for_a_stale_indicator(h: Harness, smtp: SmtpServer) -> None:
    fresh = target("t-fresh", indicator="par30", upper="0.10", lower=None, notify=("ops",))
    stale = target("t-stale", indicator="women_borrower_share", notify=("ops",))
    await h.targets(fresh, stale)
    days = business_days(8)
    for i, day in enumerate(days):
        points = [("par30", "all", "0.05")]
        if i < 2:
            points.append((CODE, "all", "0.70"))
        await h.values(day, *points)
        nodata = [a for a in await h.alerts("nodata") if a["state"] == "firing"]
        if i <= 4:  # last value on days[1]; 3 business days later is still fine
            assert nodata == [], i
    [alert] = [a for a in await h.alerts("nodata") if a["state"] == "firing"]
    assert alert["target_id"] == "t-stale" and alert["detail"]["last_update"] == str(days[1])
    await h.settle()
    assert any("not updated" in m["Subject"] for m in smtp.messages)
    # the indicator comes back: the no-data alert resolves
    await h.values(business_days(9)[-1], ("par30", "all", "0.05"), (CODE, "all", "0.70"))
    assert [a["state"] for a in await h.alerts("nodata")] == ["resolved"]
