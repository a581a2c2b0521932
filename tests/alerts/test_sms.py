"""The SMS receiver against a local server that checks requests as Africa's Talking's documented
messaging API would: a gateway outage (503, then connection refused) is retried and nothing is
sent twice; numbers never appear in full in logs, errors or the API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from services.alerts.config import AlertSettings
from services.alerts.errors import DeliveryError
from services.alerts.notify.sms import SmsGateway
from tests.alerts.harness import READER, Harness, business_days, settings_for, target
from tests.alerts.servers import SmsGatewayServer, SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
PHONES = ["+254711000123", "+254722000456"]
API_KEY = "atsk_test_key"
DASHBOARD = "https://spm.mfi.ke"


@pytest.fixture
async def gateway() -> AsyncIterator[SmsGatewayServer]:
    server = SmsGatewayServer(api_key=API_KEY, username="spm-mfi")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def h(
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
    smtp: SmtpServer,
    gateway: SmsGatewayServer,
) -> AsyncIterator[Harness]:
    routes = {"receivers": {"ops": {"sms": PHONES}}}
    harness = await Harness.start(
        settings_for(
            kafka_bootstrap,
            postgres_url,
            unique,
            smtp_port=smtp.port,
            routes=routes,
            alerts_sms_url=gateway.url,
            alerts_sms_api_key=API_KEY,
            alerts_sms_username="spm-mfi",
            alerts_sms_from="SPM",
            alerts_dashboard_url=DASHBOARD,
            alerts_flush_interval_s=3600,
        )  # fmt: skip
    )
    yield harness
    await harness.stop()


async def test_sms_retried_through_an_outage_and_sent_once(
    h: Harness, gateway: SmsGatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.outages = 2  # both numbers' first attempt: 503
    await h.targets(target(for_days=0))
    await h.values(business_days(1)[0], ("women_borrower_share", "all", "0.55"))
    await h.deliver()
    rows = [n for n in await h.notifications() if n["channel"] == "sms"]
    assert sorted(r["destination"] for r in rows) == PHONES
    assert all(r["status"] == "pending" and r["attempts"] == 1 for r in rows), rows
    assert all("HTTP 503" in r["last_error"] for r in rows)
    assert gateway.accepted == [] and gateway.seen == 2

    await gateway.stop()  # then the gateway is unreachable: connection refused
    h.clock.advance(h.settings.alerts_send_backoff_s + 1)
    await h.deliver()
    rows = [n for n in await h.notifications() if n["channel"] == "sms"]
    assert all(r["status"] == "pending" and r["attempts"] == 2 for r in rows), rows
    assert all("ConnectError" in r["last_error"] for r in rows)

    await gateway.start()
    h.clock.advance(2 * h.settings.alerts_send_backoff_s + 1)
    await h.deliver()
    rows = [n for n in await h.notifications() if n["channel"] == "sms"]
    assert all(r["status"] == "sent" and r["attempts"] == 3 for r in rows), rows
    assert gateway.violations == []
    assert sorted(f["to"] for f in gateway.accepted) == PHONES
    [alert] = await h.alerts()
    for form in gateway.accepted:
        assert form["username"] == "spm-mfi" and form["from"] == "SPM"
        message = form["message"]
        assert message == (
            "SPM: Women borrower share off target, whole institution: 55.0 % "
            f"(target at least 60.0 %) {DASHBOARD}/#/alert/{alert['id']}"
        )
        assert len(message) <= 160

    h.clock.advance(1800)  # later cycles (before the reminder): a sent row is never sent again
    await h.deliver()
    await h.deliver()
    assert len(gateway.accepted) == 2

    r = await h.client.get("/v1/notifications", headers=h.auth(READER))
    assert r.status_code == 200, r.text
    shown = [n["destination"] for n in r.json() if n["channel"] == "sms"]
    assert sorted(shown) == ["+2547******23", "+2547******56"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(p in logged or p in r.text for p in PHONES)
    assert not any(p[1:] in str(row["last_error"]) for p in PHONES for row in rows)


async def test_the_gateway_refuses_what_the_api_would_and_that_is_final(
    gateway: SmsGatewayServer,
) -> None:
    """The local gateway is strict (so the test above proves something): a wrong key or a
    message longer than one SMS is answered 400, which the channel does not retry."""
    settings = AlertSettings(
        alerts_sms_url=gateway.url, alerts_sms_api_key="wrong", alerts_sms_username="spm-mfi"
    )
    sms = SmsGateway(settings)
    try:
        with pytest.raises(DeliveryError) as err:
            await sms.send(PHONES[0], "hello")
        assert not err.value.retriable and "+2547******23" in str(err.value)
        assert gateway.violations == ["apiKey header"]
        sms.settings = settings.model_copy(update={"alerts_sms_api_key": SecretStr(API_KEY)})
        with pytest.raises(DeliveryError):
            await sms.send(PHONES[0], "x" * 161)
        assert gateway.violations[-1] == "message of 161 septets"
        await sms.send(PHONES[0], "hello")
        assert gateway.accepted[-1]["message"] == "hello"
    finally:
        await sms.close()
