"""The transactional outbox on real PostgreSQL and Kafka: order, election, exactly once on the
topic when the relay is killed between committing and publishing or between publishing and
marking rows sent, and a relay that outlives failed rounds without keeping its lock."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts.topics import TopicSpec
from services.common.bus import Bus, KafkaBus, MemoryBus, Message, Record
from services.common.db import create_engine, session_factory
from services.common.outbox import (
    SEQ_HEADER,
    OutboxRelay,
    OutboxRow,
    RelayHooks,
    RelayLockLost,
    enqueue,
    outbox_table,
    prune_sent,
)
from tests.common.outbox_worker import WorkerResult, run_worker
from tests.schemas import drop_schemas


@dataclass
class Outbox:
    url: str
    schema: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    table: Table
    topic: str
    lock: str

    def relay(self, bus: Bus, **options: Any) -> OutboxRelay:
        """A relay of this outbox onto ``bus`` (``options``: OutboxRelay's keyword arguments)."""
        return OutboxRelay(self.engine, self.table, bus, lock_name=self.lock, **options)


async def _outbox(url: str, schema: str, unique: str) -> Outbox:
    engine = create_engine(url, schema)
    metadata = MetaData(schema=schema)
    table = outbox_table(metadata)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(metadata.create_all)
    return Outbox(
        url,
        schema,
        engine,
        session_factory(engine),
        table,
        f"test.outbox.{unique}",
        f"lock-{unique}",
    )


@pytest.fixture
async def pg_outbox(postgres_url: str, unique: str) -> AsyncIterator[Outbox]:
    box = await _outbox(postgres_url, f"test_outbox_{unique}", unique)
    yield box
    await box.engine.dispose()
    await drop_schemas(postgres_url, box.schema)


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[KafkaBus]:
    bus = KafkaBus(kafka_bootstrap)
    yield bus
    await bus.close()


async def _create_topic(bus: Bus, name: str, partitions: int = 3) -> None:
    await bus.ensure_topics([TopicSpec(name, partitions, "key", "compact", -1, "test topic")])


async def _put(box: Outbox, *items: tuple[str, str]) -> None:
    """One committed transaction per message (key, value)."""
    for key, value in items:
        async with box.sessions.begin() as session:
            await enqueue(session, box.table, Message(box.topic, value.encode(), key=key.encode()))


async def _on_topic(bus: Bus, topic: str) -> list[Record]:
    return await bus.tail(topic, 100_000)


def _by_key(records: list[Record]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert r.key is not None and r.value is not None
        out.setdefault(r.key.decode(), []).append(r.value.decode())
    return out


async def _run_worker(box: Outbox, bootstrap: str, crash: str) -> WorkerResult:
    return await run_worker(box.url, box.schema, box.table.name, bootstrap, box.lock, crash)


async def _unsent(box: Outbox) -> tuple[int, int]:
    """(rows not yet sent, of which numbered)."""
    c = box.table.c
    async with box.sessions() as session:
        rows = (await session.execute(select(c.seq).where(c.sent_at.is_(None)))).all()
    return len(rows), sum(1 for (seq,) in rows if seq is not None)


@pytest.mark.postgres
@pytest.mark.kafka
async def test_relay_publishes_in_order_with_seq_headers(
    pg_outbox: Outbox, kafka: KafkaBus
) -> None:
    await _create_topic(kafka, pg_outbox.topic)
    await _put(pg_outbox, *[(f"k{i % 3}", f"k{i % 3}-{i}") for i in range(9)])
    relay = pg_outbox.relay(kafka)
    assert await relay.drain() == 9
    assert await relay.drain() == 0
    records = await _on_topic(kafka, pg_outbox.topic)
    assert _by_key(records) == {f"k{k}": [f"k{k}-{i}" for i in range(k, 9, 3)] for k in range(3)}
    seqs = sorted(int(r.header(SEQ_HEADER) or b"0") for r in records)
    assert seqs == list(range(1, 10))
    assert await _unsent(pg_outbox) == (0, 0)

    # pruning every sent row is safe: a new relay numbers on from what the topic holds
    async with pg_outbox.sessions.begin() as session:
        assert await prune_sent(session, pg_outbox.table, datetime.now(UTC)) == 9
    await _put(pg_outbox, ("k0", "k0-9"))
    fresh = pg_outbox.relay(kafka)
    assert await fresh.drain() == 1
    records = await _on_topic(kafka, pg_outbox.topic)
    assert max(int(r.header(SEQ_HEADER) or b"0") for r in records) == 10
    assert _by_key(records)["k0"] == ["k0-0", "k0-3", "k0-6", "k0-9"]


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.parametrize("crash", ["before_publish", "after_publish"])
async def test_killed_relay_publishes_exactly_once_after_restart(
    pg_outbox: Outbox, kafka: KafkaBus, kafka_bootstrap: str, crash: str
) -> None:
    await _create_topic(kafka, pg_outbox.topic)
    await _put(pg_outbox, ("a", "a-1"), ("b", "b-1"), ("a", "a-2"))
    first = await _run_worker(pg_outbox, kafka_bootstrap, "none")
    assert first.returncode == 0, first.stderr
    await _put(pg_outbox, ("a", "a-3"), ("c", "c-1"), ("b", "b-2"))

    killed = await _run_worker(pg_outbox, kafka_bootstrap, crash)
    assert killed.returncode == -9, killed.stderr  # SIGKILL: no cleanup ran
    assert await _unsent(pg_outbox) == (3, 3)  # numbered and committed, never marked sent
    on_topic = len(await _on_topic(kafka, pg_outbox.topic))
    assert on_topic == (3 if crash == "before_publish" else 6)

    restarted = await _run_worker(pg_outbox, kafka_bootstrap, "none")
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.strip() == ("3" if crash == "before_publish" else "0")
    assert await _unsent(pg_outbox) == (0, 0)
    assert _by_key(await _on_topic(kafka, pg_outbox.topic)) == {
        "a": ["a-1", "a-2", "a-3"],
        "b": ["b-1", "b-2"],
        "c": ["c-1"],
    }


@pytest.mark.postgres
@pytest.mark.kafka
async def test_late_commit_with_lower_id_is_not_mistaken_for_published(
    pg_outbox: Outbox, kafka: KafkaBus
) -> None:
    """A transaction that inserted first but commits after the relay ran must still go out,
    even across a relay restart (numbers are given at relay time, not insert time)."""
    await _create_topic(kafka, pg_outbox.topic)
    async with pg_outbox.sessions() as slow:
        await slow.begin()
        await enqueue(slow, pg_outbox.table, Message(pg_outbox.topic, b"late", key=b"x"))
        await _put(pg_outbox, ("y", "early"))
        relay = pg_outbox.relay(kafka)
        assert await relay.drain() == 1
        await slow.commit()
    restarted = pg_outbox.relay(kafka)
    assert await restarted.drain() == 1
    assert _by_key(await _on_topic(kafka, pg_outbox.topic)) == {"x": ["late"], "y": ["early"]}


@pytest.mark.postgres
@pytest.mark.kafka
async def test_one_relay_at_a_time(pg_outbox: Outbox, kafka: KafkaBus) -> None:
    await _create_topic(kafka, pg_outbox.topic)
    leader = pg_outbox.relay(kafka, poll_interval_s=0.1)
    task = asyncio.create_task(leader.run())
    try:
        await _put(pg_outbox, ("k", "v1"))
        leader.notify()
        for _ in range(100):
            if leader.published == 1:
                break
            await asyncio.sleep(0.1)
        assert leader.published == 1
        follower = pg_outbox.relay(kafka)
        with pytest.raises(RelayLockLost):
            await follower.drain()
    finally:
        leader.stop()
        await asyncio.wait_for(task, 10)
    follower = pg_outbox.relay(kafka)
    assert await follower.drain() == 0  # the lock was released on stop
    assert len(await _on_topic(kafka, pg_outbox.topic)) == 1


def _closed_port() -> int:
    """A local port nothing listens on (a broker that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.postgres
@pytest.mark.kafka
async def test_a_relay_that_cannot_reach_the_broker_keeps_no_lock(
    pg_outbox: Outbox, kafka: KafkaBus, caplog: pytest.LogCaptureFixture
) -> None:
    """Rounds that fail at the producer's start (the broker down) release the relay's lock each
    time: it once stayed on a pooled connection, and no relay of the outbox, that one
    included, was elected again (the objectives service published nothing after an outage)."""
    await _create_topic(kafka, pg_outbox.topic)
    await _put(pg_outbox, ("k", "v1"))
    down = KafkaBus(f"127.0.0.1:{_closed_port()}")
    stalled = pg_outbox.relay(down, retry_interval_s=0.2)
    caplog.set_level(logging.WARNING, logger="services.common.outbox")
    task = asyncio.create_task(stalled.run())
    other_engine = create_engine(pg_outbox.url, pg_outbox.schema)  # another instance's sessions
    try:
        for _ in range(200):
            failed = [r for r in caplog.records if "starting producer" in r.getMessage()]
            if len(failed) >= 3:
                break
            await asyncio.sleep(0.05)
        assert len(failed) >= 3, "the relay never tried the stopped broker three times"
        other = OutboxRelay(other_engine, pg_outbox.table, kafka, lock_name=pg_outbox.lock)
        published = None
        for _ in range(100):  # elected between two of the stalled relay's rounds
            try:
                published = await other.drain()
                break
            except RelayLockLost:
                await asyncio.sleep(0.05)
        assert published == 1, "the failed rounds left the lock held"
    finally:
        stalled.stop()
        await asyncio.wait_for(task, 10)
        await other_engine.dispose()
    assert _by_key(await _on_topic(kafka, pg_outbox.topic)) == {"k": ["v1"]}


@pytest.mark.postgres
@pytest.mark.kafka
async def test_a_relay_outlives_an_unexpected_error(pg_outbox: Outbox, kafka: KafkaBus) -> None:
    """An error that is neither a bus nor a database error (a client library's own) fails the
    round, not the relay: nothing awaits the relay's task, so its death would go unnoticed."""
    await _create_topic(kafka, pg_outbox.topic)
    failures: list[int] = []

    async def fail_once(rows: Sequence[OutboxRow]) -> None:
        if not failures:
            failures.append(len(rows))
            raise RuntimeError("injected: not a BusError")

    relay = pg_outbox.relay(
        kafka,
        poll_interval_s=0.1,
        retry_interval_s=0.1,
        hooks=RelayHooks(before_publish=fail_once),
    )
    task = asyncio.create_task(relay.run())
    try:
        await _put(pg_outbox, ("k", "v1"), ("k", "v2"))
        relay.notify()
        for _ in range(200):
            if relay.published == 2 or task.done():
                break
            await asyncio.sleep(0.05)
        assert not task.done(), task
        assert failures and relay.published == 2
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
    assert _by_key(await _on_topic(kafka, pg_outbox.topic)) == {"k": ["v1", "v2"]}


async def test_embedded_mode_sqlite_and_memory_bus(tmp_path: Path, unique: str) -> None:
    box = await _outbox(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}", "outbox_test", unique)
    bus = MemoryBus()
    try:
        await _create_topic(bus, box.topic)
        await _put(box, ("a", "1"), ("b", "2"), ("a", "3"))
        relay = box.relay(bus)
        assert await relay.drain() == 3
        assert _by_key(await _on_topic(bus, box.topic)) == {"a": ["1", "3"], "b": ["2"]}
    finally:
        await box.engine.dispose()


@pytest.mark.postgres
@pytest.mark.kafka
async def test_a_running_relay_prunes_rows_sent_long_ago(
    pg_outbox: Outbox, kafka: KafkaBus
) -> None:
    """Sent rows older than ``keep_sent`` go while the relay idles; newer ones stay."""
    await _create_topic(kafka, pg_outbox.topic)
    await _put(pg_outbox, ("k", "old-1"), ("k", "old-2"))
    assert await pg_outbox.relay(kafka).drain() == 2
    c = pg_outbox.table.c
    async with pg_outbox.sessions.begin() as session:
        await session.execute(
            update(pg_outbox.table).values(sent_at=datetime.now(UTC) - timedelta(hours=2))
        )
    relay = pg_outbox.relay(
        kafka,
        poll_interval_s=0.1,
        keep_sent=timedelta(hours=1),
        prune_interval_s=0.1,
    )
    task = asyncio.create_task(relay.run())
    try:
        await _put(pg_outbox, ("k", "new"))
        relay.notify()
        for _ in range(200):
            async with pg_outbox.sessions() as session:
                left = (await session.execute(select(c.value).order_by(c.id))).scalars().all()
            if left == [b"new"] and relay.published == 1:
                break
            await asyncio.sleep(0.05)
        assert left == [b"new"] and relay.published == 1
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
    assert _by_key(await _on_topic(kafka, pg_outbox.topic)) == {"k": ["old-1", "old-2", "new"]}
