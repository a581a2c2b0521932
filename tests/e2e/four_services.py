"""The four services as ``spm serve`` processes and the drift-to-inbox scenario they share: the
end-to-end test runs it on the session's Kafka and PostgreSQL, the transport-security test over
SASL_SSL and TLS."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from services.common.auth import hash_key
from tests.alerts.servers import REPO, Proc, SmtpServer

ADMIN = "e2e-admin-secret"
SERVICES = ("ingest", "indicators", "objectives", "alerts")


def service_env(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer
) -> dict[str, str]:
    """The services' environment: this process's, with per-test schemas, groups and topics."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ALERTS_", "INDICATORS_"))},
        "PYTHONPATH": str(REPO),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_url,
        "API_KEYS": json.dumps([{"name": "admin", "sha256": hash_key(ADMIN), "scopes": ["admin"]}]),
        "PSEUDONYM_PEPPER": "e2e-pepper-0123456789abcdef01234",
        "INGEST_DB_SCHEMA": f"ingest_{unique}",
        "INDICATORS_DB_SCHEMA": f"indicators_{unique}",
        "INDICATORS_GROUP_ID": f"indicators-{unique}",
        "INDICATORS_EMIT_INTERVAL_SECONDS": "0.5",
        "OBJECTIVES_DB_SCHEMA": f"objectives_{unique}",
        "OBJECTIVES_TOPIC": f"spm.objectives.v1-{unique}",
        "ALERTS_DB_SCHEMA": f"alerts_{unique}",
        "ALERTS_GROUP_ID": f"alerts-{unique}",
        "ALERTS_OBJECTIVES_TOPIC": f"spm.objectives.v1-{unique}",
        "ALERTS_TOPIC": f"spm.alerts.v1-{unique}",
        "ALERTS_SMTP_HOST": "127.0.0.1",
        "ALERTS_SMTP_PORT": str(smtp.port),
        "ALERTS_GROUP_WAIT_S": "0",
        "ALERTS_FLUSH_INTERVAL_S": "0.2",
    }


def event(unique: str, n: int, type_: str, data: dict[str, object]) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": f"e2e-{unique}-{type_}-{n}",
        "source": f"core:{unique}",
        "type": type_,
        "time": "2025-06-02T09:00:00+00:00",
        "datacontenttype": "application/json",
        "data": data,
    }


def borrower(unique: str, n: int, gender: str, branch: str) -> list[dict[str, object]]:
    """Client ``n`` registered at ``branch`` and given a loan: two events."""
    client = f"c{n}"
    return [
        event(unique, n, "spm.client.registered.v1",
              {"client_id": client, "branch_id": branch, "gender": gender,
               "registered_on": "2025-06-02"}),
        event(unique, n, "spm.loan.disbursed.v1",
              {"loan_id": f"l{n}", "client_id": client, "branch_id": branch,
               "product_id": "P1", "amount": "1000.00", "currency": "KES",
               "disbursed_on": "2025-06-02"}),
    ]  # fmt: skip


def service_url(stack: dict[str, Proc], service: str, path: str) -> str:
    return f"http://127.0.0.1:{stack[service].port}{path}"


async def start(stack: dict[str, Proc]) -> None:
    """Start every process at once, then wait until each answers its readiness probe."""
    for p in stack.values():
        p.start()
    for p in stack.values():
        await p.ready(within=120)


async def create_target(
    client: httpx.AsyncClient, stack: dict[str, Proc], unique: str, branch: str
) -> None:
    """An objective whose target wants half of ``branch``'s borrowers to be women, e-mailing
    ops@example.org at once when it is breached."""
    r = await client.post(
        service_url(stack, "objectives", "/v1/objectives"),
        json={
            "code": f"women-{unique}", "name": "Reach women", "dimension": "D1",
            "owner": "ops", "targets": [{
                "indicator": "women_borrower_share", "segment": f"branch:{branch}",
                "direction": "at_least", "threshold": "0.5", "for_days": 0,
                "severity": "critical", "notify": ["ops@example.org"],
                "effective_from": "2025-01-01",
            }],
        },
    )  # fmt: skip
    assert r.status_code == 201, r.text


@asynccontextmanager
async def started_with_target(
    stack: dict[str, Proc], unique: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The services started, an admin's client, and the target on branch ``BR-<unique>``
    created (see create_target); the client and the branch."""
    await start(stack)
    branch = f"BR-{unique}"
    auth = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(headers=auth, timeout=30) as client:
        await create_target(client, stack, unique, branch)
        yield client, branch


async def assert_drift_reaches_the_inbox(
    stack: dict[str, Proc], smtp: SmtpServer, unique: str
) -> None:
    """Start the services, create a target, post events that breach it: an e-mail arrives."""

    def url(service: str, path: str) -> str:
        return service_url(stack, service, path)

    async with started_with_target(stack, unique) as (client, branch):
        events = borrower(unique, 1, "female", branch) + borrower(unique, 2, "female", branch)
        r = await client.post(url("ingest", "/v1/events/batch"), json=events)
        assert r.status_code == 202, r.text
        drift = [e for n in range(3, 8) for e in borrower(unique, n, "male", branch)]
        r = await client.post(url("ingest", "/v1/events/batch"), json=drift)
        assert r.status_code == 202, r.text
        for _ in range(1200):
            if smtp.messages:
                break
            await asyncio.sleep(0.1)
        logs = {s: p.log.read_text()[-1500:] for s, p in stack.items()}
        assert smtp.messages, logs
        mail = smtp.messages[0]
        assert "Women borrower share" in mail["Subject"] and branch in mail["Subject"]
        assert mail["To"] == "ops@example.org"
        alerts = (await client.get(url("alerts", "/v1/alerts?state=firing"))).json()
        assert [a["segment"] for a in alerts if a["kind"] == "breach"] == [f"branch:{branch}"]
