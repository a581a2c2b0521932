"""Branch scope on the alert service: a branch manager's key sees, acknowledges and silences
only their branch's alerts (plus, read-only, the institution-level ones); notifications about
other branches stay hidden; acknowledgements and silences name the person; a role receiver
sends each branch's alerts to that branch's manager from the directory."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from services.alerts import models as m
from services.alerts.directory import Member
from services.common.auth import hash_key
from services.common.bus import MemoryBus
from services.common.paging import NEXT_CURSOR_HEADER
from tests.alerts.harness import ACKER, Harness, business_days, settings_for, target
from tests.alerts.servers import SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

MSA = "msa-manager-secret"
KEYS = json.dumps(
    [
        {"name": "ops-lead", "sha256": hash_key(ACKER), "scopes": ["alerts:read", "alerts:ack"]},
        {
            "name": "Mary Wanjiru",
            "subject": "idp|mary",
            "sha256": hash_key(MSA),
            "scopes": ["alerts:read", "alerts:ack"],
            "branches": ["MSA"],
        },
    ]
)
DIRECTORY = [
    {"name": "Mary Wanjiru", "email": "mary@example.org", "role": "branch_manager",
     "branches": ["MSA"]},
    {"name": "Njeri Otieno", "email": "njeri@example.org", "role": "branch_manager",
     "branches": ["NBO"]},
    {"name": "Head of SPM", "email": "spm@example.org", "role": "branch_manager"},
    {"name": "Loan officer", "email": "lo@example.org", "role": "loan_officer",
     "branches": ["MSA"]},
]  # fmt: skip
ROUTES = {"receivers": {"managers": {"directory": {"role": "branch_manager"}}}}


@pytest.fixture(params=["postgresql", "sqlite"])
async def h(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
    smtp: SmtpServer,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    extra: dict[str, Any] = {
        "api_keys": KEYS,
        "alerts_group_by": ["segment"],
        "alerts_directory": json.dumps(DIRECTORY),
    }
    if request.param == "sqlite":
        settings = settings_for(
            "", f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}", unique, smtp_port=smtp.port,
            routes=ROUTES, kafka_bootstrap_servers=None, **extra,
        )  # fmt: skip
        harness = await Harness.start(settings, MemoryBus())
    else:
        settings = settings_for(
            kafka_bootstrap, postgres_url, unique, smtp_port=smtp.port, routes=ROUTES, **extra
        )
        harness = await Harness.start(settings)
    yield harness
    await harness.stop()


async def _fire_three(h: Harness) -> dict[str, dict[str, Any]]:
    """Breaches on branch:MSA, branch:NBO and the institution (all); alerts by segment."""
    await h.targets(
        *(
            target(f"t-{seg}", segment=seg, for_days=0, notify=("managers",))
            for seg in ("branch:MSA", "branch:NBO", "all")
        )
    )
    day = business_days(1)[0]
    await h.values(
        day,
        *((("women_borrower_share", seg, "0.40")) for seg in ("branch:MSA", "branch:NBO", "all")),
    )
    alerts = (await h.client.get("/v1/alerts", headers=h.auth(ACKER))).json()
    return {a["segment"]: a for a in alerts}


def _errors(r: Any) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


async def test_alerts_acks_and_silences_stay_in_the_branch(h: Harness) -> None:
    alerts = await _fire_three(h)
    assert set(alerts) == {"branch:MSA", "branch:NBO", "all"}
    mine = h.auth(MSA)

    listed = (await h.client.get("/v1/alerts", headers=mine)).json()
    assert {a["segment"] for a in listed} == {"branch:MSA", "all"}
    r = await h.client.get(f"/v1/alerts/{alerts['branch:NBO']['id']}", headers=mine)
    assert r.status_code == 403 and _errors(r) == ["alert_id"]
    assert (await h.client.get(f"/v1/alerts/{alerts['all']['id']}", headers=mine)).is_success

    # acknowledging: own branch yes (naming the person), other branch and institution no
    for seg in ("branch:NBO", "all"):
        r = await h.client.post(f"/v1/alerts/{alerts[seg]['id']}/ack", headers=mine)
        assert r.status_code == 403 and _errors(r) == ["alert_id"], r.text
    r = await h.client.post(
        f"/v1/alerts/{alerts['branch:MSA']['id']}/ack", json={"comment": "on it"}, headers=mine
    )
    assert r.status_code == 200, r.text
    assert (r.json()["acked_by"], r.json()["acked_by_subject"]) == ("Mary Wanjiru", "idp|mary")
    [stored] = [a for a in await h.alerts() if a["segment"] == "branch:MSA"]
    assert (stored["acked_by"], stored["acked_by_subject"]) == ("Mary Wanjiru", "idp|mary")

    # silences: only limited to one's own branch
    ends = (h.clock.now() + timedelta(hours=2)).isoformat()

    def body(*matchers: dict[str, str]) -> dict[str, Any]:
        return {"matchers": list(matchers), "comment": "visit", "ends_at": ends}

    seg = "segment"
    for refused in (
        body({"name": "indicator", "value": "women_borrower_share"}),
        body({"name": seg, "value": "branch:NBO"}),
        body({"name": seg, "op": "=~", "value": "branch:MSA"}),
    ):
        r = await h.client.post("/v1/silences", json=refused, headers=mine)
        assert r.status_code == 403 and _errors(r) == ["matchers"], r.text
    r = await h.client.post("/v1/silences", json=body({"name": seg, "value": "branch:MSA"}),
                            headers=mine)  # fmt: skip
    assert r.status_code == 201, r.text
    own = r.json()
    assert (own["created_by"], own["created_by_subject"], own["branch"]) == (
        "Mary Wanjiru", "idp|mary", "MSA"
    )  # fmt: skip
    admin = h.auth(ACKER)
    nbo = (await h.client.post("/v1/silences", json=body({"name": seg, "value": "branch:NBO"}),
                               headers=admin)).json()  # fmt: skip
    wide = (await h.client.post("/v1/silences", json=body({"name": "kind", "value": "trend"}),
                                headers=admin)).json()  # fmt: skip
    assert (nbo["branch"], wide["branch"], wide["created_by_subject"]) == ("NBO", None, None)

    listed = (await h.client.get("/v1/silences", headers=mine)).json()
    assert {s["id"] for s in listed} == {own["id"], wide["id"]}
    every = (await h.client.get("/v1/silences", headers=admin)).json()
    assert {s["id"] for s in every} == {own["id"], wide["id"], nbo["id"]}
    for other in (nbo, wide):
        r = await h.client.delete(f"/v1/silences/{other['id']}", headers=mine)
        assert r.status_code == 403 and _errors(r) == ["silence_id"], r.text
    r = await h.client.delete(f"/v1/silences/{own['id']}", headers=mine)
    assert r.status_code == 200, r.text
    assert (r.json()["expired_by"], r.json()["expired_by_subject"]) == ("Mary Wanjiru", "idp|mary")


async def test_notifications_and_role_routing(h: Harness, smtp: SmtpServer) -> None:
    await _fire_three(h)
    await h.settle()
    sent = await h.notifications()
    by_receiver = {n["receiver"]: n for n in sent}
    assert set(by_receiver) == {
        "managers#branch:MSA", "managers#branch:NBO", "managers#institution"
    }  # fmt: skip
    assert by_receiver["managers#branch:MSA"]["destination"] == "mary@example.org"
    assert by_receiver["managers#branch:NBO"]["destination"] == "njeri@example.org"
    assert by_receiver["managers#institution"]["destination"] == "spm@example.org"
    received: dict[str, Message] = {str(msg["To"]): msg for msg in smtp.messages}
    assert set(received) == {"mary@example.org", "njeri@example.org", "spm@example.org"}
    assert "NBO" not in str(received["mary@example.org"]["Subject"]) + str(
        received["mary@example.org"].get_payload()
    )

    listed = (await h.client.get("/v1/notifications", headers=h.auth(MSA))).json()
    assert {n["receiver"] for n in listed} == {"managers#branch:MSA", "managers#institution"}
    every = (await h.client.get("/v1/notifications", headers=h.auth(ACKER))).json()
    assert len(every) == 3


async def test_filtered_before_paging(h: Harness) -> None:
    """Twenty other-branch alerts (and a notification about two branches) among five of MSA:
    full pages of MSA only, no short or empty page, nothing of NBO."""
    t0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for i in range(25):
        seg = "branch:MSA" if i % 5 == 0 else "branch:NBO"
        at = t0 + timedelta(minutes=i)
        rows.append({
            "id": str(uuid.uuid4()), "fingerprint": uuid.uuid4().hex, "target_id": "t1",
            "objective_id": "o1", "objective_code": "O1", "indicator": "women_borrower_share",
            "segment": seg, "kind": "breach", "state": "firing", "severity": "warning",
            "value": "0.5", "threshold": "0.6", "since": date(2025, 6, 1),
            "as_of": date(2025, 6, 1), "detail": {}, "created_at": at, "updated_at": at,
        })  # fmt: skip
    mixed = [rows[0]["id"], rows[1]["id"]]
    notes = [
        {
            "id": uuid.uuid4().hex,
            "group_key": "g",
            "receiver": "ops",
            "channel": "email",
            "destination": "ops@example.org",
            "format": "text",
            "reason": "firing",
            "subject": "s",
            "body_text": "b",
            "body_html": "<p>b</p>",
            "payload": {},
            "alert_ids": ids,
            "status": "sent",
            "attempts": 1,
            "next_attempt_at": t0,
            "created_at": t0 + timedelta(minutes=n),
            "sent_at": t0,
        }  # fmt: skip
        for n, ids in enumerate([[r["id"]] for r in rows] + [mixed])
    ]
    async with h.service.write() as session:
        await session.execute(insert(m.alerts), rows)
        await session.execute(insert(m.notifications), notes)

    async def walk(path: str) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            r = await h.client.get(path, params=params, headers=h.auth(MSA))
            assert r.status_code == 200, r.text
            page = r.json()
            cursor = r.headers.get(NEXT_CURSOR_HEADER)
            assert len(page) == 2 or cursor is None, (path, page)
            seen += page
            if cursor is None:
                return seen

    msa = {r["id"] for r in rows if r["segment"] == "branch:MSA"}
    assert {a["id"] for a in await walk("/v1/alerts")} == msa
    notified = await walk("/v1/notifications")
    assert len(notified) == 5 and {i for n in notified for i in n["alert_ids"]} == msa


class _Accounts:
    """Another directory behind the same interface (as user accounts will be)."""

    def members(self, role: str, branch: str | None) -> list[Member]:
        if (role, branch) != ("branch_manager", "MSA"):
            return []
        return [Member(name="Acting manager", email="acting@example.org", role=role,
                       branches=["MSA"])]  # fmt: skip


async def test_the_directory_can_be_replaced(h: Harness, smtp: SmtpServer) -> None:
    h.service.pipeline.directory = _Accounts()
    await _fire_three(h)
    await h.settle()
    assert [str(msg["To"]) for msg in smtp.messages] == ["acting@example.org"]
    sent = {n["receiver"]: n["destination"] for n in await h.notifications()}
    assert sent == {"managers#branch:MSA": "acting@example.org"}  # nobody for the others
