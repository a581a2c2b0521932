"""The in-process bus of the embedded mode.

It keeps Kafka's semantics that our services rely on — partitions chosen by the murmur2 hash of
the key exactly as Kafka clients do, ordered offsets per partition, consumer groups whose
members share partitions and rebalance on join/leave, committed offsets per group, and an
assignment hook — so code that is right on the in-process bus is right on Kafka.

Given a journal path (the embedded mode gives one in its data directory) it is also durable
like Kafka: every record is written to that on-disk log before it is acknowledged or visible
to a consumer, and a bus started again on the same path continues its offsets and its groups'
committed offsets (see ``services.common.bus.journal``). Without one it lives in memory only,
which is what tests and benchmarks want.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from contracts.topics import TopicSpec
from services.common.bus.base import (
    Bus,
    BusError,
    Delivery,
    Message,
    OffsetReset,
    OnAssign,
    OnRevoke,
    Record,
    TopicPartition,
    partition_for_key,
)
from services.common.bus.journal import Journal
from services.common.telemetry import inject_trace_headers


@dataclass
class _Group:
    generation: int = 0
    members: list[MemoryConsumer] = field(default_factory=list)
    assignment: dict[int, frozenset[TopicPartition]] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)


class MemoryBus(Bus):
    def __init__(self, journal: Path | None = None) -> None:
        self._topics: dict[str, list[list[Record]]] = {}
        self._groups: dict[str, _Group] = {}
        self._changed = asyncio.Condition()
        self._round_robin = itertools.count()
        # Not closed by ``close()``: the connection goes with the bus (a killed process loses
        # nothing, the WAL has every committed batch).
        self._journal = Journal(journal) if journal is not None else None
        if self._journal is not None:
            for group_id, committed in self._journal.group_offsets().items():
                self._group(group_id).committed.update(committed)

    # --- administration -------------------------------------------------------------------------

    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        for spec in specs:
            self.create_topic(spec.name, spec.partitions)

    def create_topic(self, name: str, partitions: int) -> None:
        if name not in self._topics:
            if self._journal is None:
                self._topics[name] = [[] for _ in range(partitions)]
            else:
                self._topics[name] = [self._journal.records(name, p) for p in range(partitions)]

    async def partition_count(self, topic: str) -> int:
        return len(self._log(topic))

    def _log(self, topic: str) -> list[list[Record]]:
        try:
            return self._topics[topic]
        except KeyError:
            raise BusError(f"topic {topic} does not exist") from None

    def end_offset(self, tp: TopicPartition) -> int:
        return len(self._log(tp.topic)[tp.partition])

    async def tail(self, topic: str, count: int) -> list[Record]:
        return [r for log in self._log(topic) for r in log[max(0, len(log) - count) :]]

    # --- producing ------------------------------------------------------------------------------

    def producer(self) -> MemoryProducer:
        return MemoryProducer(self)

    async def _append(self, messages: Sequence[Message]) -> list[Delivery]:
        """Assign offsets, write the batch to the journal (one transaction), and only then make
        it visible: no await in between, so offsets stay dense and nothing a consumer has seen
        (and whose offset a service may have committed) can be missing after a crash."""
        records: list[Record] = []
        ends: dict[TopicPartition, int] = {}
        now_ms = int(time.time() * 1000)
        for m in messages:
            log = self._log(m.topic)
            partition = self._choose_partition(m, len(log))
            tp = TopicPartition(m.topic, partition)
            offset = ends.get(tp, len(log[partition]))
            ends[tp] = offset + 1
            headers = inject_trace_headers(m.headers)
            records.append(Record(m.topic, partition, offset, m.key, m.value, headers, now_ms))
        if self._journal is not None:
            self._journal.append(records)
        for r in records:
            self._topics[r.topic][r.partition].append(r)
        deliveries = [Delivery(r.topic, r.partition, r.offset) for r in records]
        async with self._changed:
            self._changed.notify_all()
        return deliveries

    def _choose_partition(self, message: Message, partitions: int) -> int:
        if message.partition is not None:
            if not 0 <= message.partition < partitions:
                raise BusError(f"{message.topic} has no partition {message.partition}")
            return message.partition
        if message.key is None:
            return next(self._round_robin) % partitions
        return partition_for_key(message.key, partitions)

    # --- consuming ------------------------------------------------------------------------------

    def consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        *,
        on_assign: OnAssign | None = None,
        on_revoke: OnRevoke | None = None,
        auto_offset_reset: OffsetReset = "earliest",
        max_records: int = 500,
    ) -> MemoryConsumer:
        return MemoryConsumer(
            self, group_id, topics, on_assign, on_revoke, auto_offset_reset, max_records
        )

    async def group_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        return dict(self._group(group_id).committed)

    def _group(self, group_id: str) -> _Group:
        return self._groups.setdefault(group_id, _Group())

    async def _join(self, group_id: str, member: MemoryConsumer) -> None:
        group = self._group(group_id)
        group.members.append(member)
        await self._rebalance(group)

    async def _leave(self, group_id: str, member: MemoryConsumer) -> None:
        group = self._group(group_id)
        if member in group.members:
            group.members.remove(member)
            await self._rebalance(group)

    async def _rebalance(self, group: _Group) -> None:
        """Range-style assignment per topic, like Kafka's default assignor."""
        group.generation += 1
        assignment: dict[int, set[TopicPartition]] = {id(m): set() for m in group.members}
        topics = sorted({t for m in group.members for t in m.topics})
        for topic in topics:
            members = [m for m in group.members if topic in m.topics]
            partitions = len(self._log(topic))
            for index, member in enumerate(members):
                share, extra = divmod(partitions, len(members))
                start = index * share + min(index, extra)
                count = share + (1 if index < extra else 0)
                assignment[id(member)] |= {
                    TopicPartition(topic, p) for p in range(start, start + count)
                }
        group.assignment = {k: frozenset(v) for k, v in assignment.items()}
        async with self._changed:
            self._changed.notify_all()

    async def _wait_for_change(self, timeout_s: float) -> None:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):  # not wait_for: see services.common.aio
                    await self._changed.wait()


class MemoryProducer:
    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, message: Message) -> Delivery:
        return (await self._bus._append([message]))[0]

    async def send_many(self, messages: Sequence[Message]) -> list[Delivery]:
        return await self._bus._append(messages)


class MemoryConsumer:
    def __init__(
        self,
        bus: MemoryBus,
        group_id: str,
        topics: Sequence[str],
        on_assign: OnAssign | None,
        on_revoke: OnRevoke | None,
        auto_offset_reset: OffsetReset,
        max_records: int,
    ) -> None:
        self._bus = bus
        self._group_id = group_id
        self.topics = tuple(topics)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._reset = auto_offset_reset
        self._max_records = max_records
        self._generation = -1
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._positions: dict[TopicPartition, int] = {}
        self._running = False

    async def start(self) -> None:
        for topic in self.topics:
            self._bus._log(topic)
        self._running = True
        await self._bus._join(self._group_id, self)
        await self._sync_assignment()

    async def stop(self) -> None:
        if self._running:
            self._running = False
            if self._on_revoke is not None and self._assigned:
                await self._on_revoke(self._assigned)
            self._assigned = frozenset()
            await self._bus._leave(self._group_id, self)

    async def _sync_assignment(self) -> None:
        group = self._bus._group(self._group_id)
        if self._generation == group.generation:
            return
        self._generation = group.generation
        new = group.assignment.get(id(self), frozenset())
        if self._on_revoke is not None and self._assigned:
            await self._on_revoke(self._assigned)
        self._assigned = new
        self._positions = {tp: self._initial_position(tp, group) for tp in new}
        if self._on_assign is not None and new:
            for tp, offset in (await self._on_assign(new)).items():
                self.seek(tp, offset)

    def _initial_position(self, tp: TopicPartition, group: _Group) -> int:
        if tp in group.committed:
            return group.committed[tp]
        return 0 if self._reset == "earliest" else self._bus.end_offset(tp)

    async def getmany(self, timeout_ms: int = 1000) -> list[Record]:
        if not self._running:
            raise BusError("consumer is not started")
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            await self._sync_assignment()
            batch = self._fetch()
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0:
                return batch
            await self._bus._wait_for_change(remaining)

    def _fetch(self) -> list[Record]:
        batch: list[Record] = []
        for tp in sorted(self._assigned):
            log = self._bus._log(tp.topic)[tp.partition]
            start = self._positions[tp]
            taken = log[start : start + self._max_records - len(batch)]
            batch.extend(taken)
            self._positions[tp] = start + len(taken)
            if len(batch) >= self._max_records:
                break
        return batch

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        group = self._bus._group(self._group_id)
        chosen = dict(self._positions) if offsets is None else dict(offsets)
        for tp in chosen:
            if tp not in self._assigned:
                raise BusError(
                    f"commit failed: {tp} is not assigned to this member", retriable=True
                )
        if self._bus._journal is not None:
            self._bus._journal.commit(self._group_id, chosen)
        group.committed.update(chosen)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assigned

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._assigned:
            raise BusError(f"cannot seek {tp}: not assigned")
        self._positions[tp] = max(0, min(offset, self._bus.end_offset(tp)))
