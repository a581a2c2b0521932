"""A target breached for ``for_days``: pending, firing, one e-mail and one webhook; a repeat only
after ``repeat_interval``; after an ack no repeat, but the resolve is still sent; an ack does not
hide an escalation of severity."""

from __future__ import annotations

import asyncio

import pytest

from contracts.envelope import from_kafka
from tests.alerts.harness import Harness, business_days, target
from tests.alerts.servers import HttpReceiver, SmtpServer, mail_part

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"


async def test_pending_firing_repeat_ack_resolve(
    h: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    d = business_days(6)
    await h.targets(target(for_days=2))
    await h.values(d[0], (CODE, "all", "0.65"))
    assert await h.alerts() == []

    await h.values(d[1], (CODE, "all", "0.58"))
    [alert] = await h.alerts("breach")
    assert alert["state"] == "pending"
    await h.settle()
    assert smtp.messages == [] and webhook.requests == []

    await h.values(d[2], (CODE, "all", "0.58"))  # 1 business day breached: still pending
    assert (await h.alerts("breach"))[0]["state"] == "pending"
    await h.values(d[3], (CODE, "all", "0.57"))  # 2 business days: firing
    [alert] = await h.alerts("breach")
    assert alert["state"] == "firing" and alert["fired_on"] == d[3]

    await h.settle()
    assert len(smtp.messages) == 1 and len(webhook.requests) == 1
    mail, hook = smtp.messages[0], webhook.requests[0]
    sent = {n["channel"]: n for n in await h.notifications()}
    assert mail["Message-ID"] == f"<{sent['email']['id']}@spm-monitor>"
    assert hook.headers["idempotency-key"] == sent["webhook"]["id"]
    assert hook.body["status"] == "firing" and hook.body["alerts"][0]["value"] == "0.57"
    text = mail_part(mail)
    assert "Women borrower share is off target" in text and "at least 60.0 %" in text
    assert "57.0 %" in text and "business days" in text

    h.clock.advance(1800)  # half the repeat interval: nothing
    await h.settle()
    assert len(smtp.messages) == 1
    h.clock.advance(1801)
    await h.settle()
    assert len(smtp.messages) == 2 and len(webhook.requests) == 2
    assert webhook.requests[1].body["reason"] == "repeat"

    r = await h.client.post(
        f"/v1/alerts/{alert['id']}/ack", json={"comment": "on it"}, headers=h.auth()
    )
    assert r.status_code == 200, r.text
    assert r.json()["acked_by"] == "ops-lead"
    h.clock.advance(3601 * 3)
    await h.settle()
    assert len(smtp.messages) == 2  # acknowledged: no reminder

    await h.values(d[4], (CODE, "all", "0.605"))  # inside the hysteresis margin: still firing
    assert (await h.alerts("breach"))[0]["state"] == "firing"
    await h.values(d[5], (CODE, "all", "0.70"))
    assert (await h.alerts("breach"))[0]["state"] == "resolved"
    await h.settle()
    assert len(smtp.messages) == 3 and len(webhook.requests) == 3
    assert webhook.requests[2].body["status"] == "resolved"
    assert smtp.messages[2]["Subject"].startswith("Back to normal:")
    ids = {m["Message-ID"] for m in smtp.messages}
    assert len(ids) == 3

    # the state changes were published to spm.alerts.v1, keyed by fingerprint
    states: list[str] = []
    for _ in range(100):
        records = await h.bus.tail(h.settings.alerts_topic, 50)
        states = [from_kafka(r.value, r.headers).data.state for r in records]  # type: ignore[attr-defined]
        if "resolved" in states:
            break
        await asyncio.sleep(0.1)
    assert states[0] == "pending"
    assert states.count("resolved") == 1 and "firing" in states


async def test_an_ack_does_not_hide_an_escalation(
    h: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    """An acknowledgement covers the severity it was given at: when the target is raised to
    critical while the alert still fires, the escalation is notified all the same, and so are
    the reminders the ack had stopped."""
    d = business_days(3)
    await h.targets(target(for_days=0))
    await h.values(d[0], (CODE, "all", "0.55"))
    [alert] = await h.alerts("breach")
    assert alert["state"] == "firing" and alert["severity"] == "warning"
    await h.settle()
    assert len(smtp.messages) == 1
    r = await h.client.post(f"/v1/alerts/{alert['id']}/ack", json={}, headers=h.auth())
    assert r.status_code == 200, r.text

    await h.values(d[1], (CODE, "all", "0.54"))  # the same severity: the ack holds
    h.clock.advance(61)
    await h.settle()
    assert len(smtp.messages) == 1

    await h.targets(target(for_days=0, severity="critical").model_copy(update={"version": 2}))
    await h.values(d[2], (CODE, "all", "0.53"))
    [alert] = await h.alerts("breach")
    assert alert["severity"] == "critical" and alert["acked_at"] is not None
    h.clock.advance(61)
    await h.settle()
    assert len(smtp.messages) == 2 and len(webhook.requests) == 2
    assert webhook.requests[1].body["alerts"][0]["severity"] == "critical"
    h.clock.advance(3601)  # the ack was for a warning: the critical alert is reminded of
    await h.settle()
    assert len(smtp.messages) == 3
    assert webhook.requests[2].body["reason"] == "repeat"
