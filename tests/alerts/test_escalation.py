"""Escalation: an alert nobody acknowledges goes to the next level of its receiver's chain once,
after the configured time, and the chain shows in the alert's notifications; an acknowledged
alert does not escalate."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.alerts.config import Routing
from tests.alerts.harness import READER, Harness, business_days, settings_for, target
from tests.alerts.servers import SmtpServer, mail_part

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"


@pytest.fixture
async def h(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer
) -> AsyncIterator[Harness]:
    routes = {
        "receivers": {
            "branch": {
                "email": ["branch.msa@example.org"],
                "escalate": [
                    {"after_s": 3600, "receiver": "regional"},
                    {"after_s": 7200, "receiver": "head"},
                ],
            },
            "regional": {"email": ["regional@example.org"]},
            "head": {"email": ["head.ops@example.org"]},
        }
    }
    harness = await Harness.start(
        settings_for(
            kafka_bootstrap,
            postgres_url,
            unique,
            smtp_port=smtp.port,
            routes=routes,
            alerts_repeat_interval_s=86_400,
            alerts_flush_interval_s=3600,
        )  # fmt: skip
    )
    yield harness
    await harness.stop()


def _to(smtp: SmtpServer) -> list[str]:
    return [str(m["To"]) for m in smtp.messages]


async def test_no_ack_escalates_level_by_level_once(h: Harness, smtp: SmtpServer) -> None:
    await h.targets(target(for_days=0, notify=("branch",)))
    await h.values(business_days(1)[0], (CODE, "all", "0.55"))
    await h.settle()
    assert _to(smtp) == ["branch.msa@example.org"]
    h.clock.advance(3599)
    await h.settle()
    assert _to(smtp) == ["branch.msa@example.org"]  # not yet
    h.clock.advance(2)
    await h.settle()
    assert _to(smtp) == ["branch.msa@example.org", "regional@example.org"]
    escalated = smtp.messages[1]
    assert "(escalated: not acknowledged)" in str(escalated["Subject"])
    body = mail_part(escalated)
    assert "went to branch 1 hour ago and nobody has" in body
    h.clock.advance(1800)
    await h.settle()
    assert len(smtp.messages) == 2  # each level once
    h.clock.advance(1800)
    await h.settle()
    assert _to(smtp)[2:] == ["head.ops@example.org"]
    head = mail_part(smtp.messages[2])
    assert "went to regional 2 hours ago" in head

    [alert] = await h.alerts("breach")
    r = await h.client.get(f"/v1/notifications?alert_id={alert['id']}", headers=h.auth(READER))
    assert r.status_code == 200, r.text
    chain = [(n["receiver"], n["reason"]) for n in reversed(r.json())]
    assert chain == [("branch", "firing"), ("regional", "escalated"), ("head", "escalated")]


async def test_an_ack_before_the_deadline_stops_the_escalation(
    h: Harness, smtp: SmtpServer
) -> None:
    await h.targets(target(for_days=0, notify=("branch",)))
    await h.values(business_days(1)[0], (CODE, "all", "0.55"))
    await h.settle()
    [alert] = await h.alerts("breach")
    h.clock.advance(1800)
    r = await h.client.post(
        f"/v1/alerts/{alert['id']}/ack", json={"comment": "on it"}, headers=h.auth()
    )
    assert r.status_code == 200, r.text
    h.clock.advance(7300)
    await h.settle()
    assert _to(smtp) == ["branch.msa@example.org"]
    assert not [n for n in await h.notifications() if n["reason"] == "escalated"]


def test_a_chain_naming_an_unknown_receiver_is_refused() -> None:
    with pytest.raises(ValueError, match=r"receivers.a.escalate.0.receiver: no receiver 'b'"):
        Routing.model_validate(
            {"receivers": {"a": {"escalate": [{"after_s": 60, "receiver": "b"}]}}}
        )
