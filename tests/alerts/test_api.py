"""The HTTP API: scopes, validation errors naming the field, 404s, listing by state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.alerts import silences
from tests.alerts.harness import OTHER, READER, Harness, business_days, target
from tests.alerts.servers import SmtpServer
from tests.common.route_auth import assert_every_route_keyed

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_scopes(h: Harness) -> None:
    assert (await h.client.get("/v1/alerts")).status_code == 401
    assert (await h.client.get("/v1/alerts", headers=h.auth(OTHER))).status_code == 403
    assert (await h.client.get("/v1/alerts", headers=h.auth(READER))).status_code == 200
    r = await h.client.post("/v1/alerts/x/ack", headers=h.auth(READER))
    assert r.status_code == 403
    r = await h.client.post(
        "/v1/silences",
        json={"matchers": [{"name": "segment", "value": "all"}], "comment": "c",
              "ends_at": (h.clock.now() + timedelta(hours=1)).isoformat()},
        headers=h.auth(READER),
    )  # fmt: skip
    assert r.status_code == 403


async def test_every_route_needs_its_key(h: Harness) -> None:
    walked = await assert_every_route_keyed(h.app, wrong_scope_key=OTHER)
    assert {path for _, path in walked} >= {
        "/v1/alerts",
        "/v1/silences",
        "/v1/notifications",
        "/v1/actions",
        "/v1/actions/1",
    }


async def test_silence_validation(h: Harness) -> None:
    later = (h.clock.now() + timedelta(hours=1)).isoformat()
    cases = [
        ({"matchers": [{"name": "segment", "value": "all"}], "comment": "c"}, "ends_at"),
        ({"matchers": [], "comment": "c", "ends_at": later}, "matchers"),
        ({"matchers": [{"name": "colour", "value": "x"}], "comment": "c", "ends_at": later},
         "matchers.0.name"),
        ({"matchers": [{"name": "segment", "value": "(", "op": "=~"}], "comment": "c",
          "ends_at": later}, "matchers.0.value"),
        ({"matchers": [{"name": "segment", "value": "(a)\\1", "op": "=~"}], "comment": "c",
          "ends_at": later}, "matchers.0.value"),  # a back-reference: RE2 has none
        ({"matchers": [{"name": "segment", "value": "a" * 201, "op": "!~"}], "comment": "c",
          "ends_at": later}, "matchers.0.value"),
        ({"matchers": [{"name": "segment", "value": "all"}], "comment": "", "ends_at": later},
         "comment"),
        ({"matchers": [{"name": "segment", "value": "all"}], "comment": "c",
          "ends_at": (h.clock.now() - timedelta(hours=1)).isoformat()}, "ends_at"),
        ({"matchers": [{"name": "segment", "value": "all"}], "comment": "c",
          "ends_at": "2030-01-01T00:00:00"}, "ends_at"),
    ]  # fmt: skip
    for body, field in cases:
        r = await h.client.post("/v1/silences", json=body, headers=h.auth())
        assert r.status_code == 422, (body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (field, r.json())


async def test_not_found_and_conflict(h: Harness) -> None:
    r = await h.client.get("/v1/alerts/nope", headers=h.auth())
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "alert_id"
    r = await h.client.delete("/v1/silences/nope", headers=h.auth())
    assert r.status_code == 404
    await h.targets(target(for_days=0))
    d = business_days(2)
    await h.values(d[0], ("women_borrower_share", "all", "0.50"))
    await h.values(d[1], ("women_borrower_share", "all", "0.90"))
    [alert] = (await h.client.get("/v1/alerts?state=resolved", headers=h.auth())).json()
    assert alert["kind"] == "breach" and alert["value"] == "0.90"
    r = await h.client.post(f"/v1/alerts/{alert['id']}/ack", headers=h.auth())
    assert r.status_code == 409
    assert (await h.client.get("/v1/alerts", headers=h.auth())).json() == []
    assert (await h.client.get("/v1/alerts?state=bogus", headers=h.auth())).status_code == 422


async def test_retired_target_resolves_its_alerts(h: Harness) -> None:
    await h.targets(target(for_days=0))
    await h.values(business_days(1)[0], ("women_borrower_share", "all", "0.50"))
    assert (await h.alerts("breach"))[0]["state"] == "firing"
    await h.targets(target(for_days=0, status="retired"))
    [alert] = await h.alerts("breach")
    assert alert["state"] == "resolved" and alert["detail"]["reason"] == "target retired"


async def test_a_silence_stored_before_patterns_were_checked(h: Harness, smtp: SmtpServer) -> None:
    """A regex RE2 refuses, saved by an older version, silences nothing and is still listed."""
    async with h.service.db() as session, session.begin():
        await silences.create(
            session,
            matchers=[{"name": "segment", "op": "=~", "value": "(a)\\1|all"}],
            created_by="old-version", comment="before RE2", now=h.clock.now(),
            starts_at=h.clock.now(), ends_at=h.clock.now() + timedelta(days=1),
        )  # fmt: skip
    await h.targets(target(for_days=0))
    await h.values(business_days(1)[0], ("women_borrower_share", "all", "0.40"))
    await h.settle()
    assert len(smtp.messages) == 1  # not silenced
    r = await h.client.get("/v1/silences", headers=h.auth())
    assert r.status_code == 200, r.text
    assert [s["matchers"][0]["value"] for s in r.json()] == ["(a)\\1|all"]
