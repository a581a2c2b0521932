"""/v1/actions on the service (Kafka + PostgreSQL): validation naming the field, scopes, 404s and
conflicts, filters and paging, overdue notices to the owner then the manager, "too early to
tell", and the history of who changed what."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from services.common.paging import NEXT_CURSOR_HEADER
from tests.alerts.harness import READER, Harness, business_days, settings_for, target
from tests.alerts.servers import SmtpServer, mail_part

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"
ROUTES = {
    "receivers": {
        "branch": {"email": ["branch.msa@example.org"], "manager": "regional"},
        "regional": {"email": ["regional@example.org"]},
    }
}


@pytest.fixture
async def h(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer
) -> AsyncIterator[Harness]:
    harness = await Harness.start(
        settings_for(
            kafka_bootstrap,
            postgres_url,
            unique,
            smtp_port=smtp.port,
            routes=ROUTES,
            alerts_action_manager_after_s=2 * 86_400,
            alerts_flush_interval_s=3600,
        )  # fmt: skip
    )
    yield harness
    await harness.stop()


def _body(**extra: Any) -> dict[str, Any]:
    d = business_days(10)
    return {"target_id": "t-women", "title": "Outreach days", "owner": "Amina Njoroge",
            "owner_notify": "branch", "due_date": d[2].isoformat(),
            "review_date": d[8].isoformat()} | extra  # fmt: skip


async def _create(h: Harness, **extra: Any) -> dict[str, Any]:
    r = await h.client.post("/v1/actions", json=_body(**extra), headers=h.auth())
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_bad_input_names_the_field(h: Harness) -> None:
    await h.targets(target(for_days=0))
    d = business_days(10)
    cases = [
        (_body(target_id=None), "alert_id", 422),
        (_body(title=""), "title", 422),
        (_body(title="two\nlines"), "title", 422),
        (_body(owner="x" * 201), "owner", 422),
        (_body(owner_notify="nobody-we-know"), "owner_notify", 422),
        (_body(due_date="2025-13-01"), "due_date", 422),
        (_body(review_date=d[0].isoformat()), "review_date", 422),
        (_body(indicator="Not A Code"), "indicator", 422),
        (_body(colour="red"), "colour", 422),
        (_body(target_id="t-none"), "target_id", 404),
        (_body(alert_id="a-none"), "alert_id", 404),
    ]
    for body, field, code in cases:
        r = await h.client.post("/v1/actions", json=body, headers=h.auth())
        assert r.status_code == code, (body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (field, r.json())
    action = await _create(h)
    for patch, field, code in (
        ({"status": "overdue"}, "status", 422),
        ({"title": None}, "title", 422),
        ({"review_date": d[0].isoformat()}, "review_date", 422),
        ({"owner_notify": "nobody-we-know"}, "owner_notify", 422),
    ):
        r = await h.client.patch(f"/v1/actions/{action['id']}", json=patch, headers=h.auth())
        assert r.status_code == code, (patch, r.text)
        assert r.json()["errors"][0]["field"] == field
    r = await h.client.patch(f"/v1/actions/{action['id']}", json={"status": "cancelled"},
                             headers=h.auth())  # fmt: skip
    assert r.status_code == 200
    r = await h.client.patch(f"/v1/actions/{action['id']}", json={"status": "done"},
                             headers=h.auth())  # fmt: skip
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "status"
    r = await h.client.get("/v1/actions/nope", headers=h.auth())
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "action_id"
    r = await h.client.patch("/v1/actions/nope", json={"title": "x"}, headers=h.auth())
    assert r.status_code == 404


async def test_reading_needs_read_and_writing_needs_ack(h: Harness) -> None:
    await h.targets(target(for_days=0))
    assert (await h.client.get("/v1/actions", headers=h.auth(READER))).status_code == 200
    r = await h.client.post("/v1/actions", json=_body(), headers=h.auth(READER))
    assert r.status_code == 403
    action = await _create(h)
    r = await h.client.patch(f"/v1/actions/{action['id']}", json={"title": "x"},
                             headers=h.auth(READER))  # fmt: skip
    assert r.status_code == 403


async def test_on_a_target_without_values_then_filters_and_paging(h: Harness) -> None:
    await h.targets(target(for_days=0), target("t-msa", segment="branch:BR-MSA", for_days=0))
    first = await _create(h)
    assert first["opened_value"] is None and first["target_threshold"] == "0.60"
    assert first["indicator"] == CODE and first["segment"] == "all"
    moved = await _create(h, segment="branch:BR-MSA", owner="Juma")
    assert moved["segment"] == "branch:BR-MSA" and moved["target_id"] == "t-women"
    for _ in range(3):
        await _create(h, owner="Juma")
    r = await h.client.get("/v1/actions?owner=Juma&limit=3", headers=h.auth())
    page1 = r.json()
    assert len(page1) == 3 and NEXT_CURSOR_HEADER in r.headers
    r = await h.client.get(
        f"/v1/actions?owner=Juma&limit=3&cursor={r.headers[NEXT_CURSOR_HEADER]}", headers=h.auth()
    )
    page2 = r.json()
    assert len(page2) == 1 and NEXT_CURSOR_HEADER not in r.headers
    assert {a["id"] for a in page1 + page2} >= {moved["id"]}
    assert all(a["owner"] == "Juma" for a in page1 + page2)
    r = await h.client.get("/v1/actions?target_id=t-women&status=open", headers=h.auth())
    assert len(r.json()) == 5
    assert (await h.client.get("/v1/actions?status=late", headers=h.auth())).status_code == 422


async def test_overdue_tells_the_owner_then_the_manager_once(h: Harness, smtp: SmtpServer) -> None:
    await h.targets(target(for_days=0, notify=()))
    d = business_days(10)
    await h.values(d[0], (CODE, "all", "0.50"))
    [alert] = await h.alerts("breach")
    action = await _create(h, target_id=None, alert_id=alert["id"])
    assert action["target_id"] == "t-women" and action["opened_value"] == "0.50"
    assert action["objective_id"] == "obj-1"
    # due on d[2] (Wednesday 4 June): still open on that day, overdue from the next
    h.clock.advance(2 * 86_400)
    await h.settle()
    assert (await h.client.get(f"/v1/actions/{action['id']}", headers=h.auth())).json()[
        "status"
    ] == "open"
    h.clock.advance(86_400)
    await h.settle()
    got = (await h.client.get(f"/v1/actions/{action['id']}", headers=h.auth())).json()
    assert got["status"] == "overdue" and got["overdue_at"] is not None
    assert [str(m["To"]) for m in smtp.messages] == ["branch.msa@example.org"]
    assert str(smtp.messages[0]["Subject"]) == 'Overdue: "Outreach days" was due on 4 June 2025'
    text = mail_part(smtp.messages[0])
    assert "which you own, was due on 4 June 2025" in text and "50.0 %" in text
    assert f"/#/action/{action['id']}" in text
    h.clock.advance(86_400)
    await h.settle()
    assert len(smtp.messages) == 1  # the owner once; the manager after two days
    h.clock.advance(86_400)
    await h.settle()
    assert [str(m["To"]) for m in smtp.messages][1:] == ["regional@example.org"]
    assert "Amina Njoroge" in str(smtp.messages[1]["Subject"])
    h.clock.advance(86_400 * 3)
    await h.settle()
    assert len(smtp.messages) == 2
    r = await h.client.get(f"/v1/notifications?alert_id={alert['id']}", headers=h.auth())
    reasons = sorted(n["reason"] for n in r.json() if n["reason"].startswith("action"))
    assert reasons == ["action_manager", "action_overdue"]
    got = (await h.client.get(f"/v1/actions/{action['id']}", headers=h.auth())).json()
    assert [e["event"] for e in got["history"]] == ["created", "overdue", "notified", "notified"]
    # a new due date ahead takes it back to open
    later = (h.clock.now() + timedelta(days=7)).date().isoformat()
    r = await h.client.patch(
        f"/v1/actions/{action['id']}", json={"due_date": later, "review_date": later},
        headers=h.auth(),
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "open"
    change = r.json()["history"][-1]
    assert change["by"] == "ops-lead" and change["changes"]["status"] == {
        "before": "overdue", "after": "open"}  # fmt: skip


async def test_too_early_without_a_value_after_it_was_done(h: Harness) -> None:
    await h.targets(target(for_days=0))
    d = business_days(10)
    await h.values(d[0], (CODE, "all", "0.50"))
    action = await _create(h)
    r = await h.client.patch(f"/v1/actions/{action['id']}", json={"status": "done"},
                             headers=h.auth())  # fmt: skip
    assert r.status_code == 200
    h.clock.advance(14 * 86_400)  # past the review date, but no value after the day it was done
    await h.settle()
    got = (await h.client.get(f"/v1/actions/{action['id']}", headers=h.auth())).json()
    assert got["effectiveness"] == "too_early" and got["judged_value"] == "0.50"
    assert got["judged_as_of"] == d[0].isoformat()
    # a new review date asks again: the judgement is cleared, then made on the new date
    review = (h.clock.now() + timedelta(days=3)).date()
    r = await h.client.patch(
        f"/v1/actions/{action['id']}", json={"review_date": review.isoformat()}, headers=h.auth()
    )
    assert r.status_code == 200 and r.json()["effectiveness"] is None
    await h.values(h.clock.now().date(), (CODE, "all", "0.56"))  # 0.50 → 0.56: 60 % of the way
    h.clock.advance(3 * 86_400)
    await h.settle()
    got = (await h.client.get(f"/v1/actions/{action['id']}", headers=h.auth())).json()
    assert (got["effectiveness"], got["judged_value"]) == ("effective", "0.56")


async def test_moving_an_action_to_a_branch_takes_its_line_and_value(h: Harness) -> None:
    await h.targets(
        target(for_days=0), target("t-msa", segment="branch:BR-MSA", lower="0.55", for_days=0)
    )
    d = business_days(1)
    await h.values(d[0], (CODE, "all", "0.50"), (CODE, "branch:BR-MSA", "0.40"))
    action = await _create(h)
    assert (action["opened_value"], action["target_threshold"]) == ("0.50", "0.60")
    moving = {"segment": "branch:BR-MSA", "note": "it is one branch"}
    r = await h.client.patch(f"/v1/actions/{action['id']}", json=moving, headers=h.auth())
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["opened_value"], moved["target_threshold"]) == ("0.40", "0.55")
    assert moved["segment"] == "branch:BR-MSA" and moved["target_id"] == "t-women"
    change = moved["history"][-1]
    assert change["note"] == "it is one branch"
    assert change["changes"]["opened_value"] == {"before": "0.50", "after": "0.40"}
