"""Fixtures of the Fineract tests: unique topics, group and schema on the real Kafka/PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import CLIENTS, DEADLETTER, LOANS
from services.common.bus import KafkaBus
from services.ingest.fineract.config import FineractSettings
from services.ingest.fineract.consumer import FineractConsumer
from services.ingest.fineract.store import migrate_db, open_engine
from tests.ingest.fineract.helpers import FineractEvent
from tests.schemas import dropped_afterwards

PEPPER = "test-pepper-0123456789abcdef0123"
INPUT_PARTITIONS = 3


def make_settings(bootstrap: str, database_url: str, unique: str, **extra: Any) -> FineractSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "database_url": database_url,
        "pseudonym_pepper": PEPPER,
        "institution_currency": "KES",
        "fineract_topic": f"external-events-{unique}",
        "fineract_group_id": f"fineract-{unique}",
        "fineract_db_schema": f"fineract_{unique}",
        "fineract_topic_prefix": f"t{unique}.",
        "fineract_transactional_id": f"relay-{unique}",
        "fineract_park_sweep_interval_s": 0.2,
    }
    return FineractSettings(**(values | extra))


def env_of(settings: FineractSettings) -> dict[str, str]:
    """The settings as environment variables (for a subprocess)."""
    names = (
        "kafka_bootstrap_servers",
        "database_url",
        "institution_currency",
        "fineract_topic",
        "fineract_group_id",
        "fineract_db_schema",
        "fineract_topic_prefix",
        "fineract_transactional_id",
        "fineract_park_sweep_interval_s",
        "fineract_park_timeout_s",
    )
    env = {name.upper(): str(getattr(settings, name)) for name in names}
    env["PSEUDONYM_PEPPER"] = PEPPER
    return env


@asynccontextmanager
async def fineract_env(
    bootstrap: str, database_url: str, unique: str, **extra: Any
) -> AsyncIterator[FineractSettings]:
    """Unique settings, Fineract's input topic created, the schema dropped afterwards."""
    settings = make_settings(bootstrap, database_url, unique, **extra)
    await create_input_topic(bootstrap, settings.fineract_topic)
    async with dropped_afterwards(database_url, settings.fineract_db_schema):
        yield settings


@pytest.fixture
async def fineract_settings(
    kafka_bootstrap: str, postgres_url: str, unique: str
) -> AsyncIterator[FineractSettings]:
    async with fineract_env(kafka_bootstrap, postgres_url, unique) as settings:
        yield settings


async def create_input_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, INPUT_PARTITIONS, 1)])
    finally:
        await admin.close()


async def produce(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes]]
) -> None:
    """Produce as Fineract does: key = 8-byte big-endian aggregate id, value = MessageV1, no
    headers."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def fineract_records(events: Sequence[FineractEvent]) -> list[tuple[bytes | None, bytes]]:
    return [(e.kafka_key(), e.value()) for e in events]


@dataclass(frozen=True)
class Out:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    @property
    def id(self) -> str:
        return self.headers["ce_id"].decode()

    @property
    def type(self) -> str:
        return self.headers["ce_type"].decode()

    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.value or b"{}")
        return value


async def read_outputs(bootstrap: str, settings: FineractSettings) -> list[Out]:
    """Everything committed on the (unique) output topics, read_committed."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    out: list[Out] = []
    try:
        existing = await consumer.topics()
        prefix = settings.fineract_topic_prefix
        tps = [
            KafkaTP(prefix + spec.name, p)
            for spec in (CLIENTS, LOANS, DEADLETTER)
            if prefix + spec.name in existing
            for p in range(spec.partitions)
        ]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for records in batches.values():
                out += [
                    Out(r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers))
                    for r in records
                ]
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return out


async def wait_outputs(
    bootstrap: str,
    settings: FineractSettings,
    done: Callable[[list[Out]], bool],
    timeout_s: float = 60.0,
) -> list[Out]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        outputs = await read_outputs(bootstrap, settings)
        if done(outputs) or asyncio.get_running_loop().time() > deadline:
            return outputs
        await asyncio.sleep(0.3)


@asynccontextmanager
async def running_consumer(settings: FineractSettings) -> AsyncIterator[FineractConsumer]:
    """The consumer in this process, on the real Kafka and PostgreSQL, stopped on exit."""
    await migrate_db(settings)
    assert settings.kafka_bootstrap_servers
    bus = KafkaBus(settings.kafka_bootstrap_servers)
    engine = open_engine(settings)
    consumer = FineractConsumer(settings, bus, engine)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield consumer
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await engine.dispose()
        await bus.close()


Run = Callable[[FineractSettings], Awaitable[None]]
