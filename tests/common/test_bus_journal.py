"""The in-process bus with a journal, started again on the same file as after a crash: every
acknowledged record is still there, new records continue the offsets, and groups resume from
their committed offsets."""

from __future__ import annotations

from pathlib import Path

from services.common.bus import MemoryBus, Message, TopicPartition
from tests.common.test_bus import drain

TOPIC = "test.journal"


async def _produce(bus: MemoryBus, values: list[bytes]) -> list[int]:
    bus.create_topic(TOPIC, 2)
    producer = bus.producer()
    messages = [Message(TOPIC, v, b"k", (("h", b"\x00\xff"),)) for v in values]
    return [d.offset for d in await producer.send_many(messages)]


async def test_a_restarted_bus_has_every_record_and_continues_the_offsets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bus.db"
    assert await _produce(MemoryBus(path), [b"a", b"b", b"c"]) == [0, 1, 2]
    # no close(): a killed process does not close anything either
    again = MemoryBus(path)
    assert await _produce(again, [b"d"]) == [3]
    consumer = again.consumer("g", [TOPIC])
    await consumer.start()
    records = await drain(consumer, 4)
    assert [r.value for r in records] == [b"a", b"b", b"c", b"d"]
    assert {r.header("h") for r in records} == {b"\x00\xff"}
    await consumer.stop()


async def test_a_group_resumes_from_what_it_committed_before_the_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bus.db"
    first = MemoryBus(path)
    await _produce(first, [b"a", b"b", b"c"])
    consumer = first.consumer("g", [TOPIC])
    await consumer.start()
    [tp] = {r.tp for r in await drain(consumer, 3)}
    await consumer.commit({tp: 2})

    again = MemoryBus(path)
    await _produce(again, [b"d"])
    assert (await again.group_offsets("g"))[TopicPartition(TOPIC, tp.partition)] == 2
    resumed = again.consumer("g", [TOPIC])
    await resumed.start()
    assert [r.value for r in await drain(resumed, 2)] == [b"c", b"d"]
    await resumed.stop()
