"""Delivery: an SMTP server refusing for a while gets retries with exponential backoff, then
exactly one message."""

from __future__ import annotations

import asyncio

import pytest

from tests.alerts.harness import Harness, business_days, target
from tests.alerts.servers import HttpReceiver, SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"


async def test_smtp_refusing_then_accepting(
    h: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    smtp.handler.refuse = 3
    await h.targets(target(for_days=0))
    await h.values(business_days(1)[0], (CODE, "all", "0.40"))
    await h.settle()
    assert len(webhook.requests) == 1  # the other channel is not held up
    waits: list[float] = []
    for _ in range(3):
        [email] = [n for n in await h.notifications() if n["channel"] == "email"]
        assert email["status"] == "pending" and "451" in email["last_error"]
        waits.append((email["next_attempt_at"] - h.clock.now()).total_seconds())
        h.clock.advance(waits[-1] - 0.5)  # not yet due: no attempt
        await h.service.sender.send_due()
        assert smtp.handler.refused == len(waits)
        h.clock.advance(0.5)
        await h.settle()
    assert waits == [2.0, 4.0, 8.0]  # exponential backoff
    assert len(smtp.messages) == 1
    [email] = [n for n in await h.notifications() if n["channel"] == "email"]
    assert email["status"] == "sent" and email["attempts"] == 4
    assert smtp.messages[0]["Message-ID"] == f"<{email['id']}@spm-monitor>"
    await h.settle()
    assert len(smtp.messages) == 1 and len(webhook.requests) == 1


async def test_permanent_refusal_gives_up(
    h: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    """A 5xx is not retried: the row is marked failed and kept in the log."""
    original = smtp.handler.handle_DATA

    async def refuse(server: object, session: object, envelope: object) -> str:
        return "550 5.1.1 mailbox unavailable"

    smtp.handler.handle_DATA = refuse  # type: ignore[method-assign]
    try:
        await h.targets(target(for_days=0))
        await h.values(business_days(1)[0], (CODE, "all", "0.40"))
        await h.settle()
    finally:
        smtp.handler.handle_DATA = original  # type: ignore[method-assign]
    [email] = [n for n in await h.notifications() if n["channel"] == "email"]
    assert email["status"] == "failed" and email["attempts"] == 1 and "550" in email["last_error"]
    r = await h.client.get("/v1/notifications?status=failed", headers=h.auth())
    assert [n["id"] for n in r.json()] == [email["id"]]


async def test_a_notification_that_cannot_be_built_fails_alone(
    h: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    """An address with a line break in a target's ``notify`` makes an e-mail header the e-mail
    library refuses: that notification is failed with the reason, the others are delivered, and
    the sender keeps running."""
    bad = target(
        "t-bad", segment="branch:Y", for_days=0, notify=("bad@example.org\nBcc: x@example.org",)
    )
    good = target("t-good", for_days=0).model_copy(
        update={"objective_id": "obj-2", "objective_code": "other-objective"}
    )
    await h.targets(bad, good)
    await h.values(business_days(1)[0], (CODE, "branch:Y", "0.40"), (CODE, "all", "0.40"))
    await h.settle()
    emails = {n["destination"]: n for n in await h.notifications() if n["channel"] == "email"}
    failed, sent = emails["bad@example.org\nBcc: x@example.org"], emails["ops@example.org"]
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert "ValueError" in failed["last_error"]
    assert sent["status"] == "sent"
    assert [str(m["Subject"]).replace("\r\n", "") for m in smtp.messages] == [sent["subject"]]
    assert len(webhook.requests) == 1  # the good target's (ops)
    assert await h.service.ready()  # every background task, the sender's too, still runs
    # later notifications still go out, sent by the background loop alone
    await h.values(business_days(2)[1], (CODE, "all", "0.70"))
    h.clock.advance(h.settings.alerts_group_interval_s + 1)
    assert await h.service.flush_once() >= 1
    for _ in range(200):
        if len(smtp.messages) == 2:
            break
        await asyncio.sleep(0.05)
    assert smtp.messages[1]["Subject"].startswith("Back to normal:")
    [failed_again] = [n for n in await h.notifications() if n["id"] == failed["id"]]
    assert failed_again["status"] == "failed" and failed_again["attempts"] == 1
