"""Consume with exactly-once effect: effects, dedup rows and next offsets in one transaction;
on every assignment seek to the offsets stored in the database.

A failure (database or bus) stops the consumer and starts it again: the new assignment seeks back
to the last committed offsets, so nothing half-applied is skipped. Records that are not valid
events go to the dead-letter topic (acknowledged before their offsets are stored) and the
consumer moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CanonicalEvent, ContractViolation, from_kafka
from services.alerts import models as m
from services.common.bus import Bus, Message, Producer, Record, TopicPartition, dead_letter
from services.common.db import Sessions
from services.common.errors import SpmError
from services.common.faults import fault_point
from services.common.offsets import claim_new, load_offsets, store_offsets

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Sequence[CanonicalEvent]], Awaitable[None]]
IDLE_MS = 1000
RETRY_S = 1.0


class Serial:
    """Evaluation is serial: values and targets come from different consumers, and a target
    stored while a value of its indicator is being applied must not miss it (nor the value the
    target). An asyncio lock serialises this process; a transaction-scoped advisory lock
    serialises the instances sharing one PostgreSQL schema."""

    def __init__(self, key: str | None) -> None:
        self.lock = asyncio.Lock()
        self.key = key

    async def enter(self, session: AsyncSession) -> None:
        if self.key is not None and session.get_bind().dialect.name == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": self.key}
            )


class DeadLetters:
    """Where this service's consumers park records that are not valid events."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def of(self, record: Record, reason: str) -> Message:
        return dead_letter(record, reason, service="alerts", topic=self.topic)

    async def send(self, messages: Sequence[Message]) -> None:
        await self.producer.send_many(messages)
        log.warning("alerts: %d record(s) sent to the dead-letter topic", len(messages))


class Loop:
    """One consumer group over some topics, applying batches with ``handle``."""

    def __init__(
        self,
        bus: Bus,
        sessions: Sessions,
        group_id: str,
        topics: Sequence[str],
        handle: Handler,
        dead_letters: DeadLetters,
        *,
        batch_size: int = 500,
        after_batch: Callable[[], None] | None = None,
        serial: Serial | None = None,
    ) -> None:
        self.bus = bus
        self.sessions = sessions
        self.group_id = group_id
        self.topics = list(topics)
        self.handle = handle
        self.dead_letters = dead_letters
        self.batch_size = batch_size
        self.after_batch = after_batch
        self.serial = serial or Serial(None)
        self.applied = 0
        self.caught_up = asyncio.Event()
        """Set once a fetch came back empty with partitions assigned (the topic was read)."""

    async def run(self) -> None:
        while True:
            try:
                await self._run_once(until_idle=False)
            except SpmError as exc:
                log.warning("alerts: consumer %s failed (%s); restarting", self.group_id, exc)
                await asyncio.sleep(RETRY_S)

    async def catch_up(self) -> None:
        """Read the topics up to their current end (start-up read of a compacted table)."""
        while True:
            try:
                await self._run_once(until_idle=True)
                return
            except SpmError as exc:
                log.warning("alerts: catching up %s failed (%s); retrying", self.group_id, exc)
                await asyncio.sleep(RETRY_S)

    async def _on_assign(
        self, partitions: frozenset[TopicPartition]
    ) -> Mapping[TopicPartition, int]:
        async with self.sessions.read() as session:
            stored = await load_offsets(
                session,
                m.consumer_offsets,
                self.group_id,
                [(tp.topic, tp.partition) for tp in partitions],
            )
        return {TopicPartition(topic, p): offset for (topic, p), offset in stored.items()}

    async def _run_once(self, *, until_idle: bool) -> None:
        consumer = self.bus.consumer(
            self.group_id,
            self.topics,
            on_assign=self._on_assign,
            auto_offset_reset="earliest",
            max_records=self.batch_size,
        )
        await consumer.start()
        try:
            while True:
                records = await consumer.getmany(timeout_ms=IDLE_MS)
                if not records:
                    if consumer.assignment():
                        self.caught_up.set()
                        if until_idle:
                            return
                    continue
                await self._apply(records)
                if self.after_batch is not None:
                    self.after_batch()
        finally:
            await consumer.stop()

    async def _apply(self, records: Sequence[Record]) -> None:
        events: list[CanonicalEvent] = []
        offsets: dict[tuple[str, int], int] = {}
        dead: list[Message] = []
        for record in records:
            offsets[(record.topic, record.partition)] = record.offset + 1
            if record.value is None:
                continue  # a tombstone of a compacted topic
            try:
                events.append(from_kafka(record.value, record.headers))
            except ContractViolation as exc:
                reason = f"contract violation: {exc}"
                dead.append(self.dead_letters.of(record, reason))
        if dead:
            await self.dead_letters.send(dead)
        async with self.serial.lock, self.sessions.write() as session:
            await self.serial.enter(session)
            new = await claim_new(session, m.processed_events, [(e.source, e.id) for e in events])
            fresh = [e for e in events if (e.source, e.id) in new]
            await self.handle(session, fresh)
            await fault_point("alerts.between_effects_and_offsets")
            await store_offsets(session, m.consumer_offsets, self.group_id, offsets)
        self.applied += len(records)
