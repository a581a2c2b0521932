"""The loop of a corrective action through the whole product, on the distributed stack (the four
services on Kafka + PostgreSQL) and on the embedded one (``spm dev``: in-process bus + SQLite).

Contract events posted to ingest put one loan of each of two branches more than 30 days in
arrears; the indicator engine computes each branch's PAR30 off its target; the alert service
fires, e-mails the branch receiver, and, nobody acknowledging, escalates to the regional one
after an hour. An action is recorded on each alert over HTTP and marked done. The next events
cure the first branch's loan (a repayment, then a delinquency report at 0 days) while the
second's stays in arrears: on the review date the first action is judged effective and the
second not effective, with the values used, in the history and on the actions topic.

The alert service's timers run on a manual clock (escalation, review dates); the engine's
business date comes from the events' dates. Every step waits for what it needs to see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from contracts.envelope import from_kafka
from contracts.events import ActionChanged
from services.alerts import models as am
from services.alerts.app import create_app as alerts_app
from services.alerts.config import AlertSettings
from services.alerts.service import AlertService
from services.common.auth import hash_key
from services.indicators.app import create_app as indicators_app
from services.indicators.config import IndicatorSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from services.objectives.app import create_app as objectives_app
from services.objectives.config import ObjectivesSettings
from spm.devmode import build_dev_stack, free_port
from tests.alerts.harness import ManualClock
from tests.alerts.servers import SmtpServer

T = TypeVar("T")
ADMIN = "actions-loop-admin-secret"
PEPPER = "actions-loop-pepper-0123456789ab"
SERVICES = ("ingest", "indicators", "objectives", "alerts")
OK, BAD = "BR-OK", "BR-BAD"  # the branch that recovers, the one that does not
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
ALERT_OPTIONS: dict[str, Any] = {
    "alerts_routes": json.dumps(ROUTES),
    "alerts_group_wait_s": 0,
    "alerts_flush_interval_s": 0.2,
    "alerts_nodata_grace_s": 0,
}
DISBURSED, BASELINE, DRIFT, DONE, CURED, REVIEW = (
    date(2025, 5, 2), date(2025, 5, 30), date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4),
    date(2025, 6, 12),
)  # fmt: skip


@dataclass
class Stack:
    """One way of running the product, as the test sees it."""

    mode: str
    clients: dict[str, httpx.AsyncClient]
    """Per service (the embedded mode answers every path on one client)."""
    alerts: AlertService
    clock: ManualClock
    key_name: str
    """The admin key's name: who the history says acted."""


# --- the two stacks -----------------------------------------------------------------------


def _asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://spm",
        headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def distributed(
    kafka: str, postgres: str, unique: str, smtp: SmtpServer, clock: ManualClock
) -> AsyncIterator[Stack]:
    """The four services' apps on the session's Kafka and PostgreSQL, each with its own bus,
    schema, consumer groups and topics, as ``spm serve`` composes them (in this process, so the
    alert service can run on the manual clock)."""
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "database_url": postgres,
        "api_keys": json.dumps([{"name": "admin", "sha256": hash_key(ADMIN), "scopes": ["admin"]}]),
        "pseudonym_pepper": PEPPER,
    }
    suffix = f".{unique}"
    apps: dict[str, FastAPI] = {
        "ingest": ingest_app(
            IngestSettings(
                **common, ingest_db_schema=f"ingest_{unique}", ingest_topic_suffix=suffix
            )
        ),
        "indicators": indicators_app(
            IndicatorSettings(
                **common,
                indicators_db_schema=f"indicators_{unique}",
                indicators_group_id=f"indicators-{unique}",
                indicators_topic_suffix=suffix,
                indicators_emit_interval_seconds=0.5,
            )  # fmt: skip
        ),
        "objectives": objectives_app(
            ObjectivesSettings(
                **common,
                objectives_db_schema=f"objectives_{unique}",
                objectives_topic=f"spm.objectives.v1{suffix}",
                outbox_poll_interval_s=0.2,
            )  # fmt: skip
        ),
        "alerts": alerts_app(
            AlertSettings(
                **common,
                **ALERT_OPTIONS,
                alerts_db_schema=f"alerts_{unique}",
                alerts_group_id=f"alerts-{unique}",
                alerts_indicators_topic=f"spm.indicators.v1{suffix}",
                alerts_objectives_topic=f"spm.objectives.v1{suffix}",
                alerts_topic=f"spm.alerts.v1{suffix}",
                alerts_actions_topic=f"spm.actions.v1{suffix}",
                alerts_deadletter_topic=f"spm.ingest.deadletter.v1{suffix}",
                alerts_smtp_host="127.0.0.1",
                alerts_smtp_port=smtp.port,
            ),  # fmt: skip
            clock=clock,
        ),
    }
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        clients = {n: await stack.enter_async_context(_asgi_client(a)) for n, a in apps.items()}
        yield Stack("distributed", clients, apps["alerts"].state.alerts, clock, "admin")


@contextlib.asynccontextmanager
async def embedded(data_dir: Path, smtp: SmtpServer, clock: ManualClock) -> AsyncIterator[Stack]:
    """``spm dev``'s composition: one app, the in-process bus, SQLite; e-mail to the sink."""
    dev = build_dev_stack(
        data_dir=data_dir, port=free_port(), api_key=ADMIN, smtp=("127.0.0.1", smtp.port),
        alert_overrides=ALERT_OPTIONS, alert_clock=clock,
    )  # fmt: skip
    async with dev.host_app.router.lifespan_context(dev.host_app), _asgi_client(dev.app) as c:
        service = dev.services["alerts"].state.alerts
        yield Stack("embedded", dict.fromkeys(SERVICES, c), service, clock, "dev-admin")


@pytest.fixture(
    params=[
        pytest.param("distributed", marks=[pytest.mark.kafka, pytest.mark.postgres]),
        "embedded",
    ]
)
async def stack(
    request: pytest.FixtureRequest, unique: str, smtp: SmtpServer, tmp_path: Path
) -> AsyncIterator[Stack]:
    clock = ManualClock(datetime(DRIFT.year, DRIFT.month, DRIFT.day, 8, tzinfo=UTC))
    if request.param == "distributed":
        kafka = request.getfixturevalue("kafka_bootstrap")
        postgres = request.getfixturevalue("postgres_url")
        running = distributed(kafka, postgres, unique, smtp, clock)
    else:
        running = embedded(tmp_path / "spm", smtp, clock)
    async with running as s:
        yield s


# --- helpers ------------------------------------------------------------------------------


async def until(what: str, check: Callable[[], Awaitable[T | None]], within: float = 90) -> T:
    """The first truthy answer of ``check``, polled; fails naming ``what`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await check()
        if found:
            return found
        assert loop.time() < deadline, f"waited {within} s for {what}"
        await asyncio.sleep(0.2)


async def ok(response: Awaitable[httpx.Response], status: int = 200) -> Any:
    r = await response
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.text[:500]}"
    return r.json()


def _event(n: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"ev-{n}", "source": "core:loop", "type": type_,
            "time": "2025-06-01T09:00:00+00:00", "datacontenttype": "application/json",
            "data": data}  # fmt: skip


def _loans(branch: str) -> list[dict[str, Any]]:
    """Two clients of ``branch`` with a loan of 1000 each."""
    out: list[dict[str, Any]] = []
    for n in (1, 2):
        client, loan = f"{branch}-c{n}", f"{branch}-l{n}"
        out += [
            _event(f"reg-{client}", "spm.client.registered.v1",
                   {"client_id": client, "branch_id": branch, "gender": "female",
                    "registered_on": DISBURSED.isoformat()}),
            _event(f"dis-{loan}", "spm.loan.disbursed.v1",
                   {"loan_id": loan, "client_id": client, "branch_id": branch,
                    "product_id": "P1", "amount": "1000.00", "currency": "KES",
                    "disbursed_on": DISBURSED.isoformat()}),
        ]  # fmt: skip
    return out


def _dpd(branch: str, n: int, day: date, days: int) -> dict[str, Any]:
    """A delinquency report: loan ``n`` of ``branch`` is ``days`` past due on ``day``."""
    return _event(f"dpd-{branch}-{n}-{day}", "spm.loan.delinquency.v1",
                  {"loan_id": f"{branch}-l{n}", "client_id": f"{branch}-c{n}",
                   "as_of": day.isoformat(), "days_past_due": days})  # fmt: skip


def _repaid(branch: str, n: int, day: date, amount: str) -> dict[str, Any]:
    return _event(f"rep-{branch}-{n}-{day}", "spm.loan.repayment.v1",
                  {"loan_id": f"{branch}-l{n}", "client_id": f"{branch}-c{n}",
                   "transaction_id": f"t-{branch}-{n}-{day}", "value_date": day.isoformat(),
                   "amount": amount, "principal_paid": amount})  # fmt: skip


async def _post_events(s: Stack, events: list[dict[str, Any]]) -> None:
    await ok(s.clients["ingest"].post("/v1/events/batch", json=events), 202)


async def _par30(s: Stack, branch: str, day: date) -> str | None:
    """PAR30 of ``branch`` on ``day`` as the indicator API answers it (None: not computed yet)."""
    r = await s.clients["indicators"].get(
        "/v1/indicators", params={"as_of": day.isoformat(), "code": "par30"}
    )
    if r.status_code != 200:
        return None
    items = [i for i in r.json()["items"] if i["segment"] == f"branch:{branch}"]
    return None if not items or items[0]["value"] is None else str(items[0]["value"])


async def _alerts(s: Stack, state: str) -> dict[str, dict[str, Any]]:
    """The breach alerts in ``state``, by segment."""
    body = await ok(s.clients["alerts"].get("/v1/alerts", params={"state": state}))
    return {a["segment"]: a for a in body if a["kind"] == "breach"}


async def _targets_known(s: Stack, ids: set[str]) -> bool:
    """The alert service holds these targets (values of segments nobody watches are dropped,
    so the drift must not come before them)."""
    async with s.alerts.read() as session:
        rows = await session.execute(select(am.targets.c.target_id))
        return ids <= {r[0] for r in rows}


async def _both_firing(s: Stack) -> dict[str, dict[str, Any]] | None:
    firing = await _alerts(s, "firing")
    return firing if firing.keys() == {f"branch:{OK}", f"branch:{BAD}"} else None


async def _firing_on(s: Stack, segment: str, day: date) -> dict[str, Any] | None:
    alert = (await _alerts(s, "firing")).get(segment)
    return alert if alert is not None and alert["as_of"] == day.isoformat() else None


async def _resolved(s: Stack, segment: str) -> dict[str, Any] | None:
    return (await _alerts(s, "resolved")).get(segment)


async def _judged(s: Stack, action_id: str) -> dict[str, Any] | None:
    body: dict[str, Any] = await ok(s.clients["alerts"].get(f"/v1/actions/{action_id}"))
    return body if body["effectiveness"] is not None else None


async def _subject(smtp: SmtpServer, subject: str) -> bool:
    return subject in [str(m["Subject"]).replace("\r\n", "") for m in smtp.messages]


async def _mailed(smtp: SmtpServer, to: str) -> bool:
    return to in _to(smtp)


def _at(s: Stack, day: date, hour: int) -> None:
    """Move the alert service's clock forward to ``day`` at ``hour`` UTC."""
    s.clock.advance((datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - s.clock.now())
                    .total_seconds())  # fmt: skip


def _to(smtp: SmtpServer) -> list[str]:
    return [str(m["To"]) for m in smtp.messages]


# --- the loop -----------------------------------------------------------------------------


async def test_drift_alert_escalation_action_and_its_verdict(
    stack: Stack, smtp: SmtpServer
) -> None:
    s = stack
    objective = await ok(
        s.clients["objectives"].post("/v1/objectives", json={
            "code": "protect-clients", "name": "Protect clients from over-indebtedness",
            "dimension": "D4", "owner": "Head of operations",
            "targets": [{"indicator": "par30", "segment": f"branch:{b}", "direction": "at_most",
                         "threshold": "0.1", "for_days": 0, "severity": "critical",
                         "notify": ["branch"], "effective_from": "2025-01-01"} for b in (OK, BAD)],
        }), 201,
    )  # fmt: skip
    await until("the targets at the alert service",
                lambda: _targets_known(s, {t["id"] for t in objective["targets"]}))  # fmt: skip

    # on target: four loans, none in arrears at the end of May
    await _post_events(s, _loans(OK) + _loans(BAD))
    await _post_events(s, [_dpd(b, n, BASELINE, 0) for b in (OK, BAD) for n in (1, 2)])
    for b in (OK, BAD):
        assert await until(f"PAR30 of {b} on {BASELINE}", partial(_par30, s, b, BASELINE)) == "0"

    # drift: one loan of each branch 35 days past due → PAR30 0.5 against at most 0.1
    await _post_events(s, [_dpd(OK, 1, DRIFT, 35), _dpd(BAD, 1, DRIFT, 35)])
    firing = await until("both branches' alerts", lambda: _both_firing(s))
    assert {a["value"] for a in firing.values()} == {"0.5"}
    await until("the branch managers' e-mail", lambda: _mailed(smtp, "branch.managers@example.org"))
    assert "regional@example.org" not in _to(smtp)

    # nobody acknowledges: an hour later the regional level has them
    s.clock.advance(3601)
    await until("the regional e-mail", lambda: _mailed(smtp, "regional@example.org"))
    for alert in firing.values():
        sent = await ok(
            s.clients["alerts"].get("/v1/notifications", params={"alert_id": alert["id"]})
        )
        assert {(n["reason"], n["receiver"]) for n in sent} >= {
            ("firing", "branch"),
            ("escalated", "regional"),
        }

    # an action on each alert, over HTTP; it records the numbers it will be judged with
    ids: dict[str, str] = {}
    for branch, title in ((OK, "Call every client over 30 days"), (BAD, "Reschedule the loans")):
        body = await ok(s.clients["alerts"].post("/v1/actions", json={
            "alert_id": firing[f"branch:{branch}"]["id"], "title": title,
            "owner": "Amina Njoroge", "owner_notify": "branch",
            "due_date": DONE.isoformat(), "review_date": REVIEW.isoformat(),
        }), 201)  # fmt: skip
        assert (body["indicator"], body["segment"], body["status"]) == (
            "par30",
            f"branch:{branch}",
            "open",
        )
        assert (body["opened_value"], body["target_threshold"]) == ("0.5", "0.1")
        ids[branch] = body["id"]

    # done the next day
    _at(s, DONE, 10)
    for branch in (OK, BAD):
        done = {"status": "done", "note": "calls made"}
        body = await ok(s.clients["alerts"].patch(f"/v1/actions/{ids[branch]}", json=done))
        assert body["status"] == "done" and body["done_at"] is not None

    # the day after: OK's loan is repaid and cured, BAD's still in arrears
    await _post_events(
        s, [_repaid(OK, 1, CURED, "300.00"), _dpd(OK, 1, CURED, 0), _dpd(BAD, 1, CURED, 37)]
    )
    resolved = await until(f"{OK}'s alert resolved", lambda: _resolved(s, f"branch:{OK}"))
    assert resolved["value"] == "0"
    assert await _par30(s, BAD, CURED) == "0.5"
    # (the alert service has BAD's value of that day too: judged on an older one it would be
    # "too early to tell")
    still = await until(f"{BAD}'s value on {CURED}", partial(_firing_on, s, f"branch:{BAD}", CURED))
    assert still["value"] == "0.5" and (await _alerts(s, "firing")).keys() == {f"branch:{BAD}"}
    # the branch managers hear of it once the group's interval has passed
    s.clock.advance(301)
    news = f"PAR30 off target for Branch {BAD}: 50.0 %; back to normal: PAR30 for Branch {OK}"
    await until("the back-to-normal e-mail", partial(_subject, smtp, news))
    for branch in (OK, BAD):  # not before the review date
        body = await ok(s.clients["alerts"].get(f"/v1/actions/{ids[branch]}"))
        assert body["effectiveness"] is None

    # the review date: judged on the numbers
    _at(s, REVIEW, 9)
    judged = {b: await until(f"{b}'s verdict", partial(_judged, s, ids[b])) for b in (OK, BAD)}
    assert (judged[OK]["effectiveness"], judged[OK]["judged_value"]) == ("effective", "0")
    assert (judged[BAD]["effectiveness"], judged[BAD]["judged_value"]) == ("not_effective", "0.5")
    for b in (OK, BAD):
        assert judged[b]["judged_as_of"] == CURED.isoformat() and judged[b]["opened_value"] == "0.5"
        events = [(e["event"], e["by"]) for e in judged[b]["history"]]
        assert events == [("created", s.key_name), ("updated", s.key_name), ("judged", "system")]
    assert f"value 0.5 on {CURED}" in judged[BAD]["history"][-1]["note"]

    listed = await ok(
        s.clients["alerts"].get("/v1/actions", params={"status": "done", "owner": "Amina Njoroge"})
    )
    assert {a["id"] for a in listed} == set(ids.values())

    # …and on the actions topic, keyed by the action's id
    async def verdicts() -> dict[str, str | None] | None:
        records = await s.alerts.bus.tail(s.alerts.settings.alerts_actions_topic, 100)
        events = [(r.key, from_kafka(r.value, r.headers).data) for r in records]
        out: dict[str, str | None] = {
            e.action_id: e.effectiveness
            for key, e in events
            if isinstance(e, ActionChanged) and e.change == "judged"
            and key == e.action_id.encode()
        }  # fmt: skip
        return out if len(out) == 2 else None

    assert await until("the verdicts on the actions topic", verdicts) == {
        ids[OK]: "effective",
        ids[BAD]: "not_effective",
    }
