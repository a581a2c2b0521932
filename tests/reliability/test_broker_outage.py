"""The broker down under the objectives, indicators and alerts services (a private broker,
stopped and started again; the shared one is never touched): their APIs keep answering from the
database, changes made meanwhile are published once the broker is back, each exactly once, and
the consumers resume where they were, losing and doubling nothing."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from contracts.envelope import from_kafka
from contracts.events import TargetChanged
from services.common.bus import KafkaBus
from services.indicators.config import IndicatorSettings
from services.objectives.app import create_app as objectives_app
from tests.alerts.harness import Harness as AlertsHarness
from tests.alerts.harness import business_days, settings_for
from tests.alerts.harness import target as alert_target
from tests.alerts.servers import SmtpServer
from tests.indicators.conftest import API_KEYS as INDICATORS_KEYS
from tests.indicators.conftest import Harness as IndicatorsHarness
from tests.indicators.conftest import started
from tests.indicators.events import disb, reg
from tests.infra import PrivateInfra
from tests.objectives.conftest import KEYS, drop_schema, make_settings, objective, target

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateInfra]:
    run_dir = Path(tempfile.mkdtemp(prefix="tests-broker-"))
    infra = PrivateInfra(run_dir)
    try:
        infra.run("kafka-start")
        yield infra
    finally:
        infra.close()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def up(broker: PrivateInfra) -> Iterator[PrivateInfra]:
    """The broker, started again after the test whatever happened."""
    yield broker
    broker.run("kafka-start")


async def _states(bus: KafkaBus, topic: str) -> list[TargetChanged]:
    """Every target state on ``topic`` (a topic of this test's own)."""
    found = []
    for record in await bus.tail(topic, 10_000):
        event = from_kafka(record.value, record.headers)
        assert isinstance(event.data, TargetChanged)
        found.append(event.data)
    return found


async def _once_published(bus: KafkaBus, topic: str, ids: list[str]) -> list[TargetChanged]:
    """What ``topic`` holds once it holds a state of each objective in ``ids``."""
    for _ in range(600):
        states = await _states(bus, topic)
        if {s.objective_id for s in states} >= set(ids):
            return states
        await asyncio.sleep(0.2)
    raise AssertionError(f"not all of {ids} published; the topic holds {states}")


async def test_objectives_takes_changes_while_the_broker_is_down(
    up: PrivateInfra, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker is stopped and started in a thread, so the service runs on through the outage
    as it would in production, and it is started again only after the relay has failed two
    rounds against it (a failed round once left the relay's lock on a pooled connection, and
    nothing was published after the restart)."""
    caplog.set_level(logging.WARNING, logger="services.common.outbox")
    settings = make_settings(postgres_url, up.kafka_bootstrap)
    topic = settings.objectives_topic
    app = objectives_app(settings)
    bus = KafkaBus(up.kafka_bootstrap)
    headers = {"Authorization": f"Bearer {KEYS['alice'][0]}"}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://objectives", headers=headers
            ) as client:
                await asyncio.to_thread(up.run, "kafka-stop")
                segments: dict[str, str] = {}
                for _ in range(3):
                    segment = f"branch:BR-{uuid.uuid4().hex[:8]}"
                    body = objective(f"outage-{segment[-8:].lower()}", target(segment=segment))
                    created = await client.post("/v1/objectives", json=body)
                    assert created.status_code == 201, created.text  # the outbox holds it
                    oid = created.json()["id"]
                    assert (await client.get(f"/v1/objectives/{oid}")).status_code == 200
                    segments[oid] = segment
                for _ in range(900):
                    if sum(r.name == "services.common.outbox" for r in caplog.records) >= 2:
                        break  # two rounds failed against the stopped broker
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the relay did not retry against the stopped broker")
                await asyncio.to_thread(up.run, "kafka-start")
                states = await _once_published(bus, topic, list(segments))
                assert {(s.objective_id, s.segment, s.status) for s in states} == {
                    (oid, segment, "active") for oid, segment in segments.items()
                }
                # a marker change, relayed after anything still due: then the topic holds each
                # change made during the outage exactly once, and nothing else
                marker = await client.post("/v1/objectives", json=objective("outage-marker"))
                assert marker.status_code == 201, marker.text
                mid = marker.json()["id"]
                states = await _once_published(bus, topic, [mid])
                assert sorted(s.objective_id for s in states) == sorted([*segments, mid])
    finally:
        await bus.close()
        await drop_schema(settings)


@pytest.fixture
async def indicators(up: PrivateInfra, postgres_url: str) -> AsyncIterator[IndicatorsHarness]:
    unique = uuid.uuid4().hex[:10]
    settings = IndicatorSettings(
        kafka_bootstrap_servers=up.kafka_bootstrap,
        database_url=postgres_url,
        api_keys=INDICATORS_KEYS,
        indicators_topic_suffix=f".{unique}",
        indicators_group_id=f"indicators-{unique}",
        indicators_db_schema=f"ind_{unique}",
        indicators_emit_interval_seconds=0.2,
        indicators_gni_per_capita=Decimal("1000"),
    )
    async with started(settings, KafkaBus(up.kafka_bootstrap)) as h:
        yield h


async def test_indicators_answer_and_resume_across_an_outage(
    up: PrivateInfra, indicators: IndicatorsHarness
) -> None:
    h = indicators
    await h.send([reg(f"o{i}", "2024-01-01") for i in range(5)])
    up.run("kafka-stop")
    assert await h.v("active_clients", "all", "2024-01-01") == 5  # from the database
    up.run("kafka-start")
    await h.send([disb(f"OL{i}", f"o{i}", "2024-01-02", "100") for i in range(5)])
    assert await h.v("gross_loan_portfolio", "all", "2024-01-02") == 500
    assert await h.v("active_clients", "all", "2024-01-02") == 5


async def test_alerts_answer_and_resume_across_an_outage(
    up: PrivateInfra, postgres_url: str
) -> None:
    smtp = SmtpServer()
    smtp.start()
    unique = uuid.uuid4().hex[:10]
    routes = {"receivers": {"ops": {"email": ["ops@example.org"]}}}
    settings = settings_for(
        up.kafka_bootstrap, postgres_url, unique, smtp_port=smtp.port, routes=routes
    )
    h = await AlertsHarness.start(settings)
    try:
        await h.targets(alert_target(for_days=0))
        up.run("kafka-stop")
        listed = await h.client.get("/v1/alerts", headers=h.auth())
        assert listed.status_code == 200 and listed.json() == []
        up.run("kafka-start")
        await h.values(business_days(1)[0], ("women_borrower_share", "all", "0.40"))
        [alert] = await h.alerts("breach")
        assert alert["state"] == "firing"
        await h.settle()
        assert len(smtp.messages) == 1
    finally:
        await h.stop()
        smtp.stop()
