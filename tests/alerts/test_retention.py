"""History is kept for ``ALERTS_RETENTION_DAYS``: older sent notifications, resolved alerts and
ended silences are deleted; active alerts and recent history stay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.alerts.harness import Harness, business_days, target
from tests.alerts.servers import HttpReceiver, SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
DAY_S = 86_400


async def test_old_history_is_deleted_and_the_rest_kept(
    h: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    days = business_days(3)
    women = target("t-women", for_days=0)
    par = target("t-par", indicator="par30", lower=None, upper="0.10", for_days=0)
    await h.targets(women, par)
    r = await h.client.post(
        "/v1/silences",
        json={
            "matchers": [{"name": "indicator", "value": "nothing-matches"}],
            "comment": "an old silence",
            "ends_at": (h.clock.now() + timedelta(hours=1)).isoformat(),
        },
        headers=h.auth(),
    )
    assert r.status_code == 201, r.text
    await h.values(days[0], ("women_borrower_share", "all", "0.55"))
    await h.settle()
    await h.values(days[1], ("women_borrower_share", "all", "0.70"))  # resolves
    h.clock.advance(3601)
    await h.settle()
    assert len(smtp.messages) == 2
    [old] = await h.alerts("breach")
    assert old["state"] == "resolved"

    h.clock.advance((h.settings.alerts_retention_days + 1) * DAY_S)  # all that is too old now
    await h.values(days[2], ("par30", "all", "0.20"))  # a new alert, firing
    await h.settle()
    assert len(smtp.messages) == 3
    assert len(webhook.requests) == 3
    assert await h.service.purge_once() == 6  # 2 × (e-mail + webhook), 1 alert, 1 silence

    [kept] = await h.alerts()
    assert kept["target_id"] == "t-par" and kept["state"] == "firing"
    notifications = await h.notifications()
    assert sorted(n["channel"] for n in notifications) == ["email", "webhook"]
    assert all(n["alert_ids"] == [kept["id"]] for n in notifications)
    r = await h.client.get("/v1/silences?include_expired=true", headers=h.auth())
    assert r.json() == []
    assert await h.service.purge_once() == 0
