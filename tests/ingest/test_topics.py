"""``INGEST_TOPIC_SUFFIX``: accepted events land on the suffixed topics, none on the catalog's."""

from __future__ import annotations

import asyncio
import time

import pytest

from contracts.examples import EXAMPLES
from contracts.registry import SOURCE_EVENTS
from contracts.topics import CLIENTS, COMPLAINTS, DEADLETTER, LOANS
from services.common.bus import KafkaBus, Record
from services.ingest.config import IngestSettings
from tests.ingest.conftest import TopicTail, auth, of_source, running

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _read(bootstrap: str, topics: list[str], group: str, count: int) -> list[Record]:
    """At least ``count`` records of ``topics`` from the start (or what came within 30 s)."""
    consumer = KafkaBus(bootstrap).consumer(group, topics, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Record] = []
    try:
        deadline = time.monotonic() + 30
        while len(records) < count and time.monotonic() < deadline:
            records += await consumer.getmany(timeout_ms=200)
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records


async def test_suffix_renames_every_topic_ingest_publishes_to(
    ingest_settings: IngestSettings, drop_schema: None, kafka_bootstrap: str, unique: str
) -> None:
    suffix = f".{unique}"
    settings = ingest_settings.model_copy(update={"ingest_topic_suffix": suffix})
    bus = KafkaBus(kafka_bootstrap)
    try:
        await bus.ensure_topics([CLIENTS, LOANS, COMPLAINTS, DEADLETTER])  # for the tail's mark
    finally:
        await bus.close()
    plain = TopicTail(kafka_bootstrap)
    await plain.mark()
    source = f"core:{unique}"
    bodies = [
        {**body, "source": source, "id": f"{spec.type}-{unique}"}
        for spec in SOURCE_EVENTS
        if (body := EXAMPLES[spec.type].input()) is not None
    ]
    async with running(settings) as (_, client):
        response = await client.post("/v1/events/batch", json=bodies, headers=auth())
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == len(bodies)

    names = [t.name + suffix for t in (CLIENTS, LOANS, COMPLAINTS, DEADLETTER)]
    records = await _read(kafka_bootstrap, names, f"check-{unique}", len(bodies))
    by_id = {r.header("ce_id"): r.topic for r in records}
    expected = {
        f"{spec.type}-{unique}".encode(): spec.topic.name + suffix for spec in SOURCE_EVENTS
    }
    assert by_id == expected
    assert of_source(await plain.read(idle_s=2.0), source) == []
