"""Fixtures of the ingest tests: the app in-process on the real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from contracts.topics import CLIENTS, COMPLAINTS, DEADLETTER, LOANS
from services.common.auth import hash_key
from services.common.bus import KafkaBus
from services.common.bus import TopicPartition as BusTP
from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.schemas import drop_schemas

PEPPER = "test-pepper-0123456789abcdef0123"
WRITER_KEY = "writer-secret-key"
LIMITED_KEY = "limited-secret-key"
READER_KEY = "reader-secret-key"
LIMITED_SOURCE = "core:allowed"
INGEST_TOPICS = (CLIENTS.name, LOANS.name, COMPLAINTS.name, DEADLETTER.name)


def api_keys_json() -> str:
    return json.dumps(
        [
            {"name": "writer", "sha256": hash_key(WRITER_KEY), "scopes": ["ingest:write"]},
            {
                "name": "limited",
                "sha256": hash_key(LIMITED_KEY),
                "scopes": ["ingest:write"],
                "sources": [LIMITED_SOURCE],
            },
            {"name": "reader", "sha256": hash_key(READER_KEY), "scopes": ["indicators:read"]},
        ]
    )


def auth(key: str = WRITER_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def ingest_settings(kafka_bootstrap: str, postgres_url: str, unique: str) -> IngestSettings:
    return IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=postgres_url,
        pseudonym_pepper=PEPPER,
        api_keys=api_keys_json(),
        institution_currency="KES",
        ingest_db_schema=f"ingest_{unique}",
        kafka_request_timeout_ms=5_000,
    )


@pytest.fixture
async def drop_schema(ingest_settings: IngestSettings) -> AsyncIterator[None]:
    yield
    await drop_schemas(ingest_settings.database_url, ingest_settings.ingest_db_schema)


@asynccontextmanager
async def running(settings: IngestSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan run, and a client talking to it in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield app, client


@pytest.fixture
async def client(
    ingest_settings: IngestSettings, drop_schema: None
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(ingest_settings) as (_, http):
        yield http


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


class TopicTail:
    """Records appended to the ingest topics since :meth:`mark` (read_committed, via the bus)."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._start: dict[TopicPartition, int] = {}

    async def _end_offsets(self) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(
            *INGEST_TOPICS, bootstrap_servers=self._bootstrap, enable_auto_commit=False
        )
        await consumer.start()  # no group: subscribing assigns every partition of the topics
        try:
            deadline = time.monotonic() + 30
            while len({tp.topic for tp in consumer.assignment()}) < len(INGEST_TOPICS):
                assert time.monotonic() < deadline, "ingest topics not assigned"
                await asyncio.sleep(0.05)
            ends: dict[TopicPartition, int] = await consumer.end_offsets(consumer.assignment())
            return ends
        finally:
            await consumer.stop()

    async def mark(self) -> None:
        self._start = await self._end_offsets()

    async def read(self, idle_s: float = 5.0) -> list[Consumed]:
        """Everything between the mark and the end offsets when called (each record once)."""
        ends = {BusTP(tp.topic, tp.partition): o for tp, o in (await self._end_offsets()).items()}
        start = {BusTP(tp.topic, tp.partition): offset for tp, offset in self._start.items()}
        missing = {tp for tp, end in ends.items() if end > start.get(tp, 0)}

        async def on_assign(partitions: frozenset[BusTP]) -> dict[BusTP, int]:
            return {tp: start.get(tp, 0) for tp in partitions}

        consumer = KafkaBus(self._bootstrap).consumer(
            f"tail-{uuid.uuid4().hex}", list(INGEST_TOPICS), on_assign=on_assign
        )
        await consumer.start()
        seen: dict[tuple[str, int, int], Consumed] = {}
        try:
            idle_since = time.monotonic()
            while missing and time.monotonic() - idle_since < idle_s:
                records = await consumer.getmany(timeout_ms=200)
                if not consumer.assignment():  # still joining the group: not idle yet
                    idle_since = time.monotonic()
                for r in records:
                    if start.get(r.tp, 0) <= r.offset < ends.get(r.tp, 0):
                        idle_since = time.monotonic()
                        seen[(r.topic, r.partition, r.offset)] = Consumed(
                            r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers)
                        )
                        if r.offset >= ends[r.tp] - 1:
                            missing.discard(r.tp)
        finally:
            await consumer.stop()
        return sorted(seen.values(), key=lambda c: (c.topic, c.partition, c.offset))


@pytest.fixture
async def tail(kafka_bootstrap: str, client: httpx.AsyncClient) -> TopicTail:
    """Created after the app (so the topics exist)."""
    t = TopicTail(kafka_bootstrap)
    await t.mark()
    return t


def of_source(records: list[Consumed], source: str) -> list[Consumed]:
    return [r for r in records if r.headers.get("ce_source") == source.encode()]


def event(
    type_: str, id_: str, source: str, data: dict[str, Any], time: str = "2025-03-03T08:30:00+03:00"
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": id_,
        "source": source,
        "type": type_,
        "time": time,
        "data": data,
    }
