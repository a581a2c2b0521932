"""The objectives relay is killed after the change committed (before or after publishing);
after a restart of the service every change is on the topic exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from sqlalchemy import select

from contracts.envelope import from_kafka
from contracts.events import TargetChanged
from services.common.bus import KafkaBus
from services.common.db import session_factory
from services.objectives.app import build_service, create_app
from services.objectives.models import outbox
from services.objectives.schemas import ObjectiveCreate
from services.objectives.store import migrate_schema, open_engine
from tests.common.outbox_worker import run_worker
from tests.objectives.conftest import KEYS, drop_schema, make_settings, objective, target

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def _states(kafka: KafkaBus, topic: str) -> Counter[tuple[str, str, int]]:
    """(target id, status, version) -> how many records carry it."""
    seen: Counter[tuple[str, str, int]] = Counter()
    for record in await kafka.tail(topic, 10_000):
        data = from_kafka(record.value, record.headers).data
        assert isinstance(data, TargetChanged)
        seen[(data.target_id, data.status, data.version)] += 1
    return seen


@pytest.mark.parametrize("crash", ["before_publish", "after_publish"])
async def test_relay_killed_after_commit_publishes_exactly_once_after_restart(
    postgres_url: str, kafka_bootstrap: str, crash: str
) -> None:
    settings = make_settings(postgres_url, kafka_bootstrap)
    kafka = KafkaBus(kafka_bootstrap)
    await migrate_schema(settings)
    await kafka.ensure_topics([settings.topic_spec])
    engine = open_engine(settings)
    try:
        # 1. a change commits while no relay runs
        body = objective(
            "crash",
            target(),
            target(
                indicator="par30", direction="at_most", threshold="0.05", warning_threshold="0.04"
            ),
        )
        async with session_factory(engine)() as session, session.begin():
            created = await build_service(settings).create(
                session, ObjectiveCreate.model_validate(body), author="alice"
            )
        expected = Counter({(t.id, "active", 1): 1 for t in created.targets})

        # 2. the relay numbers the rows, commits that, and is SIGKILLed before or after sending
        killed = await run_worker(
            settings.database_url,
            settings.objectives_db_schema,
            "outbox",
            kafka_bootstrap,
            f"spm-outbox:{settings.objectives_db_schema}",
            crash,
        )
        assert killed.returncode == -9, killed.stderr
        on_topic = await _states(kafka, settings.objectives_topic)
        assert on_topic == (Counter() if crash == "before_publish" else expected)

        # 3. the service restarts: its relay recovers; then a new change goes out too
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://objectives",
                headers={"Authorization": f"Bearer {KEYS['alice'][0]}"},
            ) as client:
                retired = await client.delete(
                    f"/v1/objectives/{created.id}", params={"reason": "test", "version": 1}
                )
                assert retired.status_code == 200
            expected.update({(t.id, "retired", 2): 1 for t in created.targets})
            for _ in range(100):
                on_topic = await _states(kafka, settings.objectives_topic)
                if sum(on_topic.values()) >= 4:
                    break
                await asyncio.sleep(0.1)
        assert on_topic == expected  # each state exactly once, nothing lost
        async with session_factory(engine)() as session:
            unsent = (
                await session.execute(select(outbox.c.id).where(outbox.c.sent_at.is_(None)))
            ).all()
        assert unsent == []
    finally:
        await engine.dispose()
        await kafka.close()
        await drop_schema(settings)
