"""The envelope codec: structured JSON and Kafka binary mode, on paper and through real Kafka."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.envelope import (
    CanonicalEvent,
    ContractViolation,
    Headers,
    from_kafka,
    from_structured,
    parse_canonical,
    to_kafka,
    to_structured,
)
from contracts.examples import EXAMPLES

TYPES = sorted(EXAMPLES)
CE_HEADERS = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_partitionkey"}


def example_event(type_: str) -> CanonicalEvent:
    return parse_canonical(EXAMPLES[type_].canonical())


def violation_fields(value: bytes | None, headers: Headers) -> set[str]:
    with pytest.raises(ContractViolation) as raised:
        from_kafka(value, headers)
    return {error.field for error in raised.value.errors}


def replace_header(headers: Headers, name: str, raw: bytes | None) -> Headers:
    kept = [(n, v) for n, v in headers if n != name]
    return kept if raw is None else [*kept, (name, raw)]


@pytest.mark.parametrize("type_", TYPES)
def test_structured_round_trip(type_: str) -> None:
    structured = EXAMPLES[type_].canonical()
    event = from_structured(structured)
    assert to_structured(event) == structured
    assert from_structured(json.loads(json.dumps(to_structured(event)))) == event


@pytest.mark.parametrize("type_", TYPES)
def test_binary_mode_round_trip_in_memory(type_: str) -> None:
    event = example_event(type_)
    record = to_kafka(event)
    assert record.topic == event.topic
    assert record.key == event.partitionkey.encode()
    assert from_kafka(record.value, record.headers) == event


def test_corrupt_value_names_data() -> None:
    record = to_kafka(example_event("spm.loan.disbursed.v1"))
    assert violation_fields(b'{"loan_id": ', record.headers) == {"data"}
    assert violation_fields(b"\xff\xfe", record.headers) == {"data"}
    assert violation_fields(None, record.headers) == {"data"}


def test_invalid_payload_names_the_field() -> None:
    record = to_kafka(example_event("spm.loan.disbursed.v1"))
    data: dict[str, Any] = json.loads(record.value)
    data["amount"] = "-10.00"
    assert violation_fields(json.dumps(data).encode(), record.headers) == {"data.amount"}


@pytest.mark.parametrize(("header", "field"), [("ce_id", "id"), ("ce_time", "time")])
def test_missing_header_names_the_attribute(header: str, field: str) -> None:
    record = to_kafka(example_event("spm.client.registered.v1"))
    assert violation_fields(record.value, replace_header(record.headers, header, None)) == {field}


def test_missing_type_header_names_type() -> None:
    record = to_kafka(example_event("spm.client.registered.v1"))
    headers = replace_header(record.headers, "ce_type", None)
    assert violation_fields(record.value, headers) == {"type"}


def test_unknown_type_names_type() -> None:
    record = to_kafka(example_event("spm.client.registered.v1"))
    headers = replace_header(record.headers, "ce_type", b"spm.client.teleported.v1")
    assert violation_fields(record.value, headers) == {"type"}


def test_non_utf8_header_is_named() -> None:
    record = to_kafka(example_event("spm.client.registered.v1"))
    headers = replace_header(record.headers, "ce_source", b"\xff\xfe")
    assert violation_fields(record.value, headers) == {"ce_source"}


def test_unsupported_content_type_is_named() -> None:
    record = to_kafka(example_event("spm.client.registered.v1"))
    headers = replace_header(record.headers, "content-type", b"application/avro")
    assert violation_fields(record.value, headers) == {"content-type"}


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def produce_all(bootstrap: str, topic: str, events: list[CanonicalEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            record = to_kafka(event)
            await producer.send_and_wait(
                topic, record.value, key=record.key, headers=record.headers
            )
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[Any] = []
    try:
        async with asyncio.timeout(60):
            while len(received) < expected:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    received.extend(records)
    finally:
        await consumer.stop()
    return received


@pytest.mark.kafka
async def test_binary_mode_round_trip_through_kafka(kafka_bootstrap: str, unique: str) -> None:
    topic = f"test.contracts.codec.{unique}"
    await create_topic(kafka_bootstrap, topic, partitions=3)
    events = {type_: example_event(type_) for type_ in TYPES}
    await produce_all(kafka_bootstrap, topic, list(events.values()))

    received = await consume(kafka_bootstrap, topic, len(events))

    assert len(received) == len(events)
    decoded_types = set()
    for message in received:
        decoded = from_kafka(message.value, message.headers)
        original = events[decoded.type]
        assert decoded == original
        assert message.key == original.partitionkey.encode()
        header_names = {name for name, _ in message.headers}
        assert header_names >= CE_HEADERS
        assert "content-type" in header_names
        assert ("traceparent" in header_names) == (original.traceparent is not None)
        assert dict(message.headers)["ce_partitionkey"] == message.key
        decoded_types.add(decoded.type)
    assert decoded_types == set(events)
