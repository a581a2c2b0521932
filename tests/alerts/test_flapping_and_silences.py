"""Values hovering at the line for 60 days notify only a few times; silences suppress matching
alerts until they expire."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.alerts.harness import Harness, business_days, target
from tests.alerts.servers import HttpReceiver, SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"


async def test_sixty_days_oscillating_around_the_line(h: Harness, smtp: SmtpServer) -> None:
    rng = random.Random(7)
    await h.targets(target(for_days=0, warning_lower="0.63"))
    states: list[str] = []
    for day in business_days(60):
        # around 0.60 by up to ±0.008: inside the hysteresis margin (2 % of 0.60 = 0.012)
        value = f"{0.600 + rng.uniform(-0.008, 0.008):.4f}"
        await h.values(day, (CODE, "all", value))
        h.clock.advance(600)  # ten minutes between business days: no reminder (1 h) is due
        await h.deliver()
        states.append((await h.alerts("breach") or [{"state": "ok"}])[-1]["state"])
    await h.settle()
    assert len(await h.alerts("breach")) == 1  # one episode, never resolved and refired
    assert states.count("firing") >= 55
    emails = [n for n in await h.notifications() if n["channel"] == "email"]
    changes = [n["subject"] for n in emails if n["reason"] != "repeat"]
    # the warning band first (maybe), then the breach; without hysteresis: ~30 fire/resolve pairs
    assert 1 <= len(changes) <= 2, changes
    # plus reminders of the unacknowledged alert: one per repeat interval (10 h of clock / 1 h)
    assert len(emails) - len(changes) <= 10


async def test_alternating_breaches_never_fire_with_for_days(h: Harness, smtp: SmtpServer) -> None:
    await h.targets(target(for_days=1))
    for i, day in enumerate(business_days(20)):
        await h.values(day, (CODE, "all", "0.59" if i % 2 == 0 else "0.61"))
    await h.settle()
    assert await h.alerts("breach") == []  # each pending episode cleared: dropped quietly
    assert smtp.messages == []


async def test_silence_suppresses_then_expires(
    h: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    ends = h.clock.now() + timedelta(hours=2)
    r = await h.client.post(
        "/v1/silences",
        json={
            "matchers": [{"name": "indicator", "value": CODE}, {"name": "segment", "value": "all"}],
            "comment": "known data migration in progress",
            "ends_at": ends.isoformat(),
        },
        headers=h.auth(),
    )
    assert r.status_code == 201, r.text
    silence = r.json()
    assert silence["created_by"] == "ops-lead" and silence["status"] == "active"

    await h.targets(target(for_days=0))
    d = business_days(2)
    await h.values(d[0], (CODE, "all", "0.50"))
    assert (await h.alerts("breach"))[0]["state"] == "firing"
    await h.settle()
    assert smtp.messages == [] and webhook.requests == []

    h.clock.advance(7201)  # the silence has ended
    r = await h.client.get("/v1/silences?include_expired=true", headers=h.auth())
    assert r.json()[0]["status"] == "expired"
    await h.settle()
    assert len(smtp.messages) == 1 and len(webhook.requests) == 1


async def test_expire_silence_early(h: Harness, smtp: SmtpServer) -> None:
    r = await h.client.post(
        "/v1/silences",
        json={
            "matchers": [{"name": "severity", "value": "warn.*", "op": "=~"}],
            "comment": "maintenance",
            "ends_at": (h.clock.now() + timedelta(days=1)).isoformat(),
        },
        headers=h.auth(),
    )
    await h.targets(target(for_days=0))
    await h.values(business_days(1)[0], (CODE, "all", "0.50"))
    await h.settle()
    assert smtp.messages == []
    r = await h.client.delete(f"/v1/silences/{r.json()['id']}", headers=h.auth())
    assert r.status_code == 200 and r.json()["expired_by"] == "ops-lead"
    await h.settle()
    assert len(smtp.messages) == 1
