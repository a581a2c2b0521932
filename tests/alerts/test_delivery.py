"""Delivery: an SMTP server refusing for a while gets retries with exponential backoff, then
exactly one message; so do a webhook answering 5xx or not answering, and an SMTP server that is
down or never greets. The notification log shows the pending row and why meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.alerts.harness import Harness, business_days, settings_for, target
from tests.alerts.servers import HttpReceiver, SmtpServer, free_port

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
    # later notifications still go out, delivered by the background sender alone
    await h.values(business_days(2)[1], (CODE, "all", "0.70"))
    h.clock.advance(h.settings.alerts_group_interval_s + 1)
    await h.service.flush_once()  # the group is due: flushed here or by the background loop
    for _ in range(200):
        if len(smtp.messages) == 2:
            break
        await asyncio.sleep(0.05)
    assert smtp.messages[1]["Subject"].startswith("Back to normal:")
    [failed_again] = [n for n in await h.notifications() if n["id"] == failed["id"]]
    assert failed_again["status"] == "failed" and failed_again["attempts"] == 1


async def _until_sent(h: Harness, channel: str, attempts: int = 10) -> dict[str, Any]:
    """Retry the channel's notification as its backoff allows (manual clock) until it is sent."""
    for _ in range(attempts):
        await h.settle()
        [row] = [n for n in await h.notifications() if n["channel"] == channel]
        if row["status"] == "sent":
            return row
        assert row["status"] == "pending", row  # a transient failure is never given up early
        h.clock.advance((row["next_attempt_at"] - h.clock.now()).total_seconds())
    raise AssertionError(f"{channel} notification not sent after {attempts} rounds")


async def _pending_as_the_user_sees_it(h: Harness, channel: str, error: str) -> None:
    [row] = [n for n in await h.notifications() if n["channel"] == channel]
    assert row["status"] == "pending" and error in row["last_error"], row
    r = await h.client.get("/v1/notifications?status=pending", headers=h.auth())
    assert r.status_code == 200
    [seen] = [n for n in r.json() if n["id"] == row["id"]]
    assert error in seen["last_error"]


async def test_webhook_answering_5xx_is_retried_then_delivered_once(
    h: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    webhook.fail_with = [503, 500]
    await h.targets(target(for_days=0))
    await h.values(business_days(1)[0], (CODE, "all", "0.40"))
    await h.settle()
    assert len(smtp.messages) == 1  # the other channel is not held up
    await _pending_as_the_user_sees_it(h, "webhook", "503")
    hook = await _until_sent(h, "webhook")
    assert webhook.answered == [503, 500, 200] and hook["attempts"] == 3
    assert {r.headers["idempotency-key"] for r in webhook.requests} == {hook["id"]}
    assert len(smtp.messages) == 1


async def test_webhook_timing_out_is_retried_then_delivered_once(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    webhook.stall = 1
    routes = {"receivers": {"ops": {"webhooks": [{"url": webhook.url, "format": "generic"}]}}}
    settings = settings_for(
        kafka_bootstrap, postgres_url, unique, smtp_port=smtp.port, routes=routes,
        alerts_webhook_timeout_s=0.5,
    )  # fmt: skip
    h = await Harness.start(settings)
    try:
        await h.targets(target(for_days=0))
        await h.values(business_days(1)[0], (CODE, "all", "0.40"))
        await h.settle()
        await _pending_as_the_user_sees_it(h, "webhook", "Timeout")
        hook = await _until_sent(h, "webhook")
    finally:
        await h.stop()
    assert len(webhook.requests) == 2 and webhook.answered == [200]
    assert {r.headers["idempotency-key"] for r in webhook.requests} == {hook["id"]}


class SilentServer:
    """Accepts connections and never says a word (no SMTP greeting); the client times out."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", self.port)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # until the client hangs up
        finally:
            writer.close()
            await writer.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.mark.parametrize("fault", ["refused", "silent"])
async def test_smtp_unreachable_then_back_delivers_once(
    kafka_bootstrap: str, postgres_url: str, unique: str, fault: str
) -> None:
    """Nothing listening (connection refused) or a server that never greets (timeout): the
    e-mail stays pending with the reason, and goes out once when a server answers again."""
    port = free_port()
    silent = SilentServer(port) if fault == "silent" else None
    if silent is not None:
        await silent.start()
    routes = {"receivers": {"ops": {"email": ["ops@example.org"]}}}
    settings = settings_for(
        kafka_bootstrap, postgres_url, unique, smtp_port=port, routes=routes,
        alerts_smtp_timeout_s=0.5,
    )  # fmt: skip
    h = await Harness.start(settings)
    server = SmtpServer(port)
    try:
        await h.targets(target(for_days=0))
        await h.values(business_days(1)[0], (CODE, "all", "0.40"))
        await h.settle()
        await _pending_as_the_user_sees_it(h, "email", "SMTP")
        if silent is not None:
            await silent.stop()
        server.start()
        email = await _until_sent(h, "email")
    finally:
        await h.stop()
        server.stop()
    assert [m["Message-ID"] for m in server.messages] == [f"<{email['id']}@spm-monitor>"]
