"""One suite, two buses: what holds on real Kafka must hold on the in-process bus."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from contracts.topics import TopicSpec
from services.common.bus import (
    Bus,
    Consumer,
    KafkaBus,
    MemoryBus,
    Message,
    Record,
    TopicPartition,
    partition_for_key,
)
from services.common.bus.kafka import KafkaProducer

PARTITIONS = 4
REPO_ROOT = Path(__file__).resolve().parents[2]


def kafka_libs_dir() -> Path:
    """The broker jars that deploy/local/infra.sh resolved from Maven Central."""
    cache = Path(os.environ.get("SPM_CACHE_DIR", REPO_ROOT / ".cache"))
    candidates = sorted(cache.glob("kafka-*/libs"))
    assert candidates, f"no Kafka jars under {cache}: run deploy/local/infra.sh up"
    return candidates[-1]


@pytest.fixture(
    params=[
        pytest.param("kafka", marks=pytest.mark.kafka),
        pytest.param("memory"),
        pytest.param("journal"),  # the embedded mode's: in memory and journaled on disk
    ],
)
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        kafka = KafkaBus(bootstrap)
        yield kafka
        await kafka.close()
    elif request.param == "journal":
        yield MemoryBus(tmp_path / "bus.db")
    else:
        yield MemoryBus()


@pytest.fixture
async def topic(bus: Bus, unique: str) -> str:
    name = f"test.bus.{unique}"
    await bus.ensure_topics([TopicSpec(name, PARTITIONS, "key", "delete", -1, "test")])
    return name


async def produce(bus: Bus, topic: str, count: int, prefix: str = "k") -> None:
    producer = bus.producer()
    await producer.start()
    try:
        await producer.send_many(
            [Message(topic, f"v{i}".encode(), f"{prefix}{i}".encode()) for i in range(count)]
        )
    finally:
        await producer.stop()


async def drain(consumer: Consumer, expected: int, timeout_s: float = 30) -> list[Record]:
    records: list[Record] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(records) < expected and asyncio.get_running_loop().time() < deadline:
        records += await consumer.getmany(timeout_ms=200)
    return records


async def test_round_trip_keeps_key_value_and_headers(bus: Bus, topic: str, unique: str) -> None:
    producer = bus.producer()
    await producer.start()
    delivery = await producer.send(
        Message(topic, b'{"x":1}', b"client-7", (("ce_id", b"e-1"), ("ce_type", b"t")))
    )
    await producer.stop()
    assert delivery.partition == partition_for_key(b"client-7", PARTITIONS)

    consumer = bus.consumer(f"g-{unique}", [topic])
    await consumer.start()
    try:
        [record] = await drain(consumer, 1)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"client-7", b'{"x":1}')
    assert record.header("ce_id") == b"e-1"
    assert record.header("ce_type") == b"t"
    assert (record.partition, record.offset) == (delivery.partition, delivery.offset)


async def test_same_key_same_partition_as_murmur2(bus: Bus, topic: str) -> None:
    producer = bus.producer()
    await producer.start()
    try:
        keys = [f"client-{i}".encode() for i in range(50)]
        first = await producer.send_many([Message(topic, b"1", k) for k in keys])
        second = await producer.send_many([Message(topic, b"2", k) for k in keys])
    finally:
        await producer.stop()
    for key, a, b in zip(keys, first, second, strict=True):
        assert a.partition == b.partition == partition_for_key(key, PARTITIONS)
    assert len({d.partition for d in first}) == PARTITIONS


async def test_send_many_reports_where_each_record_landed(
    bus: Bus, topic: str, unique: str
) -> None:
    """Deliveries come back in the order sent, even when a partition's records fill more than
    one record batch (600 x 2 KiB > the producer's 256 KiB batches)."""
    messages = [
        Message(topic, f"{i}:".encode() + b"x" * 2048, f"key-{i % 7}".encode(), (("n", b"%d" % i),))
        for i in range(600)
    ]
    producer = bus.producer()
    await producer.start()
    try:
        deliveries = await producer.send_many(messages)
    finally:
        await producer.stop()
    consumer = bus.consumer(f"g-{unique}", [topic])
    await consumer.start()
    try:
        records = await drain(consumer, 600)
    finally:
        await consumer.stop()
    landed = {(r.partition, r.offset): r for r in records}
    assert len(landed) == 600
    for message, delivery in zip(messages, deliveries, strict=True):
        assert delivery.partition == partition_for_key(message.key or b"", PARTITIONS)
        record = landed[(delivery.partition, delivery.offset)]
        assert (record.key, record.value, record.header("n")) == (
            message.key,
            message.value,
            message.headers[0][1],
        )


async def test_group_resumes_after_committed_offset(bus: Bus, topic: str, unique: str) -> None:
    await produce(bus, topic, 20)
    group = f"g-{unique}"
    first = bus.consumer(group, [topic])
    await first.start()
    seen = await drain(first, 20)
    await first.commit()
    await first.stop()
    assert len(seen) == 20

    await produce(bus, topic, 5, prefix="late")
    second = bus.consumer(group, [topic])
    await second.start()
    try:
        resumed = await drain(second, 5)
        resumed += await second.getmany(timeout_ms=500)
    finally:
        await second.stop()
    assert sorted(r.key or b"" for r in resumed) == sorted(f"late{i}".encode() for i in range(5))


async def test_crash_before_commit_redelivers(bus: Bus, topic: str, unique: str) -> None:
    await produce(bus, topic, 10)
    group = f"g-{unique}"
    first = bus.consumer(group, [topic])
    await first.start()
    assert len(await drain(first, 10)) == 10
    await first.stop()  # no commit: the work was not recorded anywhere

    second = bus.consumer(group, [topic])
    await second.start()
    try:
        again = await drain(second, 10)
    finally:
        await second.stop()
    assert sorted(r.key or b"" for r in again) == sorted(f"k{i}".encode() for i in range(10))


async def test_seek_on_assign_to_external_offsets(bus: Bus, topic: str, unique: str) -> None:
    await produce(bus, topic, 40)
    stored: dict[TopicPartition, int] = {TopicPartition(topic, p): 2 for p in range(PARTITIONS)}
    assigned: list[frozenset[TopicPartition]] = []

    async def load(partitions: frozenset[TopicPartition]) -> Mapping[TopicPartition, int]:
        assigned.append(partitions)
        return {tp: stored[tp] for tp in partitions}

    consumer = bus.consumer(f"g-{unique}", [topic], on_assign=load)
    await consumer.start()
    try:
        records = await drain(consumer, 40 - 2 * PARTITIONS)
    finally:
        await consumer.stop()
    assert assigned and assigned[0] == frozenset(stored)
    assert len(records) == 40 - 2 * PARTITIONS
    assert min(r.offset for r in records) == 2


async def test_two_members_share_partitions(bus: Bus, topic: str, unique: str) -> None:
    await produce(bus, topic, 60)
    group = f"g-{unique}"
    a, b = bus.consumer(group, [topic]), bus.consumer(group, [topic])
    await a.start()
    await b.start()
    try:
        got: list[Record] = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(got) < 60 and asyncio.get_running_loop().time() < deadline:
            got += await a.getmany(timeout_ms=100)
            got += await b.getmany(timeout_ms=100)
        assert a.assignment() and b.assignment()
        assert not (a.assignment() & b.assignment())
        assert len(got) == 60
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.kafka
async def test_concurrent_senders_to_one_partition_are_not_timed_out(
    kafka_bootstrap: str, unique: str
) -> None:
    """40 senders x 10 requests of 50 records on one partition, with a 1 s request timeout:
    aiokafka's own per-call batches made most of them fail with KafkaTimeoutError on a
    healthy broker. Every record lands once, where its delivery says."""
    bus = KafkaBus(kafka_bootstrap, request_timeout_ms=1000)
    topic = f"test.bus.{unique}"
    await bus.ensure_topics([TopicSpec(topic, 1, "key", "delete", -1, "test")])
    producer = bus.producer()
    await producer.start()

    async def sender(s: int) -> list[tuple[bytes, int]]:
        landed = []
        for r in range(10):
            keys = [f"{s}-{r}-{i}".encode() for i in range(50)]
            deliveries = await producer.send_many([Message(topic, b"x" * 300, k) for k in keys])
            landed += [(k, d.offset) for k, d in zip(keys, deliveries, strict=True)]
        return landed

    try:
        results = await asyncio.gather(*(sender(s) for s in range(40)))
    finally:
        await producer.stop()
        await bus.close()
    offsets = {offset: key for landed in results for key, offset in landed}
    assert sorted(offsets) == list(range(40 * 10 * 50))
    consumer = KafkaBus(kafka_bootstrap).consumer(f"g-{unique}", [topic])
    await consumer.start()
    try:
        records = await drain(consumer, len(offsets))
    finally:
        await consumer.stop()
    assert {r.offset: r.key for r in records} == offsets


async def test_a_cancelled_sender_does_not_take_others_records_down(
    bus: Bus, topic: str, unique: str
) -> None:
    producer = bus.producer()
    await producer.start()
    try:
        first = asyncio.ensure_future(producer.send_many([Message(topic, b"a", b"k")] * 20))
        second = asyncio.ensure_future(producer.send_many([Message(topic, b"b", b"k")] * 20))
        await asyncio.sleep(0)  # both have placed their records (on Kafka: in one batch)
        first.cancel()
        deliveries = await second
    finally:
        await producer.stop()
    consumer = bus.consumer(f"g-{unique}", [topic])
    await consumer.start()
    try:
        records = await drain(consumer, 40, timeout_s=5)
    finally:
        await consumer.stop()
    by_offset = {(r.partition, r.offset): r.value for r in records}
    assert [by_offset[(d.partition, d.offset)] for d in deliveries] == [b"b"] * 20


@pytest.mark.kafka
async def test_kafka_producer_is_idempotent_with_acks_all(kafka_bootstrap: str) -> None:
    producer = KafkaBus(kafka_bootstrap).producer()
    assert isinstance(producer, KafkaProducer)
    await producer.start()
    try:
        raw = producer.raw
        assert raw._txn_manager is not None  # idempotence enabled
        assert raw._sender._acks == -1  # acks=all
    finally:
        await producer.stop()


@pytest.mark.kafka
async def test_a_header_without_value_is_dropped_not_fatal(
    kafka_bootstrap: str, unique: str
) -> None:
    """Kafka allows null header values (other producers send them); the shared consumer must
    not crash on one: the header reads as absent, the rest of the record is intact."""
    bus = KafkaBus(kafka_bootstrap)
    topic = f"test.nullheader.{unique}"
    await bus.ensure_topics([TopicSpec(topic, 1, "key", "delete", -1, "test")])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, b"{}", key=b"k", headers=[("ce_id", b"e-1"), ("trace", None)]
        )
    finally:
        await producer.stop()

    consumer = bus.consumer(f"g-{unique}", [topic])
    await consumer.start()
    try:
        [record] = await drain(consumer, 1)
    finally:
        await consumer.stop()
    assert record.headers == (("ce_id", b"e-1"),)
    assert record.header("trace") is None
    assert record.value == b"{}"


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


@pytest.mark.kafka
@pytest.mark.parametrize("client", ["producer", "consumer"])
async def test_a_start_cancelled_midway_leaves_no_connection_open(
    kafka_bootstrap: str, unique: str, client: str
) -> None:
    """A service stopped while its Kafka client is still starting cancels ``start()``; the
    client's connections must be closed then, not left to the garbage collector."""
    bus = KafkaBus(kafka_bootstrap)
    topic = f"test.cancel.{unique}"
    await bus.ensure_topics([TopicSpec(topic, 1, "key", "delete", -1, "test")])
    before = open_sockets()
    cancelled = 0  # starts cut off once under way (the task ran before its cancel)
    for attempt in range(60):
        if cancelled == 8:
            break
        started = bus.producer() if client == "producer" else bus.consumer(f"g-{unique}", [topic])
        task = asyncio.create_task(started.start())
        await asyncio.sleep(0.0005 * (1 + attempt % 8))
        cancelled += task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await started.stop()
    gc.collect()
    assert cancelled == 8
    assert open_sockets() <= before


@pytest.mark.kafka
async def test_java_client_partitioner_agrees(kafka_bootstrap: str, unique: str) -> None:
    """Keys produced by Kafka's own Java console producer land where partition_for_key says."""
    libs = kafka_libs_dir()
    topic = f"test.java.{unique}"
    bus = KafkaBus(kafka_bootstrap)
    await bus.ensure_topics([TopicSpec(topic, 6, "key", "delete", -1, "test")])
    keys = [f"client-{i:03d}" for i in range(60)]
    lines = "".join(f"{key}\t{i}\n" for i, key in enumerate(keys))
    process = await asyncio.create_subprocess_exec(
        "java",
        "-cp",
        f"{libs}/*",
        "org.apache.kafka.tools.ConsoleProducer",
        "--bootstrap-server",
        kafka_bootstrap,
        "--topic",
        topic,
        "--reader-property",
        "parse.key=true",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(lines.encode()), 120)
    assert process.returncode == 0, output.decode()

    consumer = bus.consumer(f"g-{unique}", [topic])
    await consumer.start()
    try:
        records = await drain(consumer, len(keys))
    finally:
        await consumer.stop()
    assert len(records) == len(keys)
    for record in records:
        assert record.key is not None
        assert record.partition == partition_for_key(record.key, 6), record.key
    assert len({r.partition for r in records}) == 6
