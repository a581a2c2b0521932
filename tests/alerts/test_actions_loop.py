"""The whole loop of a corrective action, on the distributed stack (Kafka + PostgreSQL) and on the
embedded one (in-process bus + SQLite): an indicator drifts in two branches → alerts fire →
nobody acknowledges, so they escalate → an action is recorded on each alert → both are done →
one branch recovers, the other does not → on the review date the first action is judged
effective and the second not effective, with the values used, in the history and on the
actions topic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import from_kafka
from services.common.bus import MemoryBus
from tests.alerts.harness import Harness, business_days, settings_for, target
from tests.alerts.servers import SmtpServer

CODE = "women_borrower_share"
MSA, NRB = "branch:BR-MSA", "branch:BR-NRB"
ROUTES = {
    "receivers": {
        "branch": {
            "email": ["branch.managers@example.org"],
            "escalate": [{"after_s": 3600, "receiver": "regional"}],
            "manager": "regional",
        },
        "regional": {"email": ["regional@example.org"]},
    }
}


@pytest.fixture(params=["distributed", "embedded"])
async def stack(
    request: pytest.FixtureRequest, unique: str, smtp: SmtpServer, tmp_path: Path
) -> AsyncIterator[Harness]:
    if request.param == "distributed":
        kafka = request.getfixturevalue("kafka_bootstrap")
        postgres = request.getfixturevalue("postgres_url")
        h = await Harness.start(
            settings_for(kafka, postgres, unique, smtp_port=smtp.port, routes=ROUTES)
        )
    else:
        settings = settings_for(
            "", f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}", unique, smtp_port=smtp.port,
            routes=ROUTES, kafka_bootstrap_servers=None,
        )  # fmt: skip
        h = await Harness.start(settings, MemoryBus())
    yield h
    await h.stop()


async def _events(h: Harness, want: int) -> list[Any]:
    """The spm.action.changed.v1 payloads on the actions topic, once ``want`` have arrived."""
    found: list[Any] = []
    for _ in range(200):
        records = await h.bus.tail(h.settings.alerts_actions_topic, 100)
        found = [from_kafka(r.value, r.headers).data for r in records]
        if len(found) >= want:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(found)} action events on the topic, expected {want}")


async def _at(h: Harness, day: date, hour: int = 9) -> None:
    """Move the manual clock forward to ``day`` at ``hour`` UTC."""
    now = h.clock.now()
    h.clock.advance((now.replace(year=day.year, month=day.month, day=day.day, hour=hour) - now)
                    .total_seconds())  # fmt: skip


async def test_the_loop(stack: Harness, smtp: SmtpServer) -> None:
    h = stack
    d = business_days(12)
    await h.targets(
        target("t-msa", segment=MSA, for_days=0, notify=("branch",)),
        target("t-nrb", segment=NRB, for_days=0, notify=("branch",)),
    )
    # drift: both branches fall below the 60 % line
    await h.values(d[0], (CODE, MSA, "0.50"), (CODE, NRB, "0.52"))
    await h.settle()
    alerts = {a["segment"]: a for a in await h.alerts("breach")}
    assert {s: a["state"] for s, a in alerts.items()} == {MSA: "firing", NRB: "firing"}
    assert [str(m["To"]) for m in smtp.messages] == ["branch.managers@example.org"]

    # nobody acknowledges: after an hour the regional level gets them
    h.clock.advance(3601)
    await h.settle()
    escalated = [n for n in await h.notifications() if n["reason"] == "escalated"]
    assert {n["receiver"] for n in escalated} == {"regional"} and len(escalated) == 2
    assert "regional@example.org" in [str(m["To"]) for m in smtp.messages]

    # actions recorded on each alert (the opening values and the line are recorded with them)
    ids: dict[str, str] = {}
    for segment, title in ((MSA, "Women-only outreach days"), (NRB, "Radio spot")):
        r = await h.client.post(
            "/v1/actions",
            json={"alert_id": alerts[segment]["id"], "title": title, "owner": "Amina Njoroge",
                  "owner_notify": "branch", "due_date": d[4].isoformat(),
                  "review_date": d[10].isoformat()},
            headers=h.auth(),
        )  # fmt: skip
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["target_id"] == f"t-{segment[-3:].lower()}" and body["segment"] == segment
        assert body["target_threshold"] == "0.60" and body["status"] == "open"
        ids[segment] = body["id"]
    assert (await h.client.get(f"/v1/actions/{ids[MSA]}", headers=h.auth())).json()[
        "opened_value"
    ] == "0.50"

    # both done on the second business day
    await _at(h, d[1])
    for segment in (MSA, NRB):
        r = await h.client.patch(
            f"/v1/actions/{ids[segment]}", json={"status": "done", "note": "held"},
            headers=h.auth(),
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "done" and r.json()["done_at"] is not None

    # the numbers of the following days: MSA recovers, NRB does not
    for day, msa, nrb in ((d[2], "0.55", "0.52"), (d[3], "0.58", "0.53"), (d[5], "0.63", "0.53")):
        await h.values(day, (CODE, MSA, msa), (CODE, NRB, nrb))
    await h.settle()
    assert (await h.client.get(f"/v1/actions/{ids[MSA]}", headers=h.auth())).json()[
        "effectiveness"
    ] is None  # not before the review date

    await _at(h, d[10])
    await h.settle()
    judged = {
        s: (await h.client.get(f"/v1/actions/{ids[s]}", headers=h.auth())).json()
        for s in (MSA, NRB)
    }
    assert judged[MSA]["effectiveness"] == "effective"
    assert (judged[MSA]["judged_value"], judged[MSA]["judged_as_of"]) == ("0.63", d[5].isoformat())
    assert judged[NRB]["effectiveness"] == "not_effective"
    assert (judged[NRB]["opened_value"], judged[NRB]["judged_value"]) == ("0.52", "0.53")
    events = [(e["event"], e["by"]) for e in judged[NRB]["history"]]
    assert events == [("created", "ops-lead"), ("updated", "ops-lead"), ("judged", "system")]
    assert "value 0.53" in judged[NRB]["history"][-1]["note"]

    # …and both on the actions topic, keyed by action id
    found = await _events(h, 6)
    verdicts = {e.action_id: e.effectiveness for e in found if e.change == "judged"}
    assert verdicts == {ids[MSA]: "effective", ids[NRB]: "not_effective"}
    r = await h.client.get("/v1/actions?status=done&owner=Amina%20Njoroge", headers=h.auth())
    assert {a["id"] for a in r.json()} == set(ids.values())
