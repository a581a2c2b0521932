"""The Fineract consumer loop: external-events -> (one DB transaction) -> outbox -> relay.

Exactly-once effect, database pattern: each fetched batch is applied in ONE database transaction
that writes the outbox rows (canonical events and dead letters), the dedup rows (tenant +
``idempotencyKey``), the per-aggregate high-water marks, the loan table, parked events and the
consumer offsets. On every partition assignment the consumer seeks to the offsets stored there,
so a crash before the commit replays the batch and a crash after it replays nothing. The relay
then publishes the outbox exactly once (Kafka transactions with its progress: see relay.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topics import CLIENTS, DEADLETTER, LOANS
from services.common.aio import wait_event
from services.common.bus import Bus, Consumer, Record, TopicPartition
from services.common.db import DatabaseError, Sessions
from services.common.errors import SpmError
from services.common.faults import fault_point
from services.common.metrics import count_ingest
from services.common.offsets import load_offsets, store_offsets
from services.ingest.fineract import models as m
from services.ingest.fineract.avro import SchemaRegistry, default_registry
from services.ingest.fineract.config import FineractSettings
from services.ingest.fineract.ignored import IgnoredEvents
from services.ingest.fineract.mapping import MapperConfig
from services.ingest.fineract.processor import BatchStats, Processor
from services.ingest.fineract.relay import OutboxRelay, create_relay
from services.ingest.fineract.store import exclusive, purge_messages
from services.ingest.pseudonym import Pseudonymiser
from services.ingest.validation import DateBounds, Validator

log = logging.getLogger(__name__)

RETRY_DELAY_S = 2.0


def build_processor(
    settings: FineractSettings, registry: SchemaRegistry | None = None
) -> Processor:
    pepper = settings.pseudonym_pepper
    if pepper is None:
        raise SpmError("PSEUDONYM_PEPPER is not set: ingest cannot pseudonymise without it")
    bounds = DateBounds(settings.ingest_min_business_date, settings.ingest_max_future_days)
    validator = Validator(
        Pseudonymiser(pepper.get_secret_value()), settings.institution_currency, bounds
    )
    return Processor(
        registry or default_registry(),
        validator,
        MapperConfig(gender_map=settings.fineract_gender_map),
        topic_prefix=settings.fineract_topic_prefix,
        keep_original=settings.fineract_deadletter_original,
    )


class FineractConsumer:
    def __init__(self, settings: FineractSettings, bus: Bus, engine: AsyncEngine) -> None:
        self.settings = settings
        self.bus = bus
        self.engine = engine
        self.sessions = Sessions(engine)
        self.processor = build_processor(settings)
        self.totals = BatchStats()
        self.ignored = IgnoredEvents()
        prefix = settings.fineract_topic_prefix
        self.deadletter_topic = prefix + DEADLETTER.name
        self.output_specs = [replace(s, name=prefix + s.name) for s in (CLIENTS, LOANS, DEADLETTER)]
        self.relay: OutboxRelay = create_relay(
            bus,
            self.sessions.factory,
            batch=settings.fineract_relay_batch,
            transactional_id=settings.fineract_transactional_id,
            progress_topic=self.deadletter_topic,
        )
        self._last_sweep = 0.0
        self._last_purge = time.monotonic()
        self.is_active = asyncio.Event()  # set while this instance holds the lock (not a standby)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set (or forever); retriable failures are retried."""
        stop = stop or asyncio.Event()
        await self.bus.ensure_topics(self.output_specs)
        lock = f"spm-fineract:{self.settings.fineract_transactional_id}"
        async with exclusive(self.engine, lock, stop) as active:
            if not active:
                return
            self.is_active.set()
            await self.relay.start()
            try:
                while not stop.is_set():
                    try:
                        await self._consume(stop)
                    except SpmError as exc:
                        if not exc.retriable:
                            raise
                        log.warning("fineract consumer: %s; retry in %.0fs", exc, RETRY_DELAY_S)
                        await wait_event(stop, RETRY_DELAY_S)
            finally:
                self.is_active.clear()
                await self.relay.stop()

    async def _consume(self, stop: asyncio.Event) -> None:
        await self.relay.flush()  # what a previous incarnation committed but did not publish
        s = self.settings
        consumer = self.bus.consumer(
            s.fineract_group_id,
            [s.fineract_topic],
            on_assign=self._on_assign,
            max_records=s.fineract_max_records,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                await self.step(consumer)
        finally:
            await consumer.stop()

    async def step(self, consumer: Consumer) -> BatchStats | None:
        """One poll: apply what came in, sweep parked events when due, relay the outbox."""
        records = await consumer.getmany(timeout_ms=500)
        stats = await self.apply(records) if records else None
        if time.monotonic() - self._last_sweep >= self.settings.fineract_park_sweep_interval_s:
            await self.sweep()
        await self.relay.flush()
        return stats

    async def apply(self, records: list[Record]) -> BatchStats:
        nexts: dict[tuple[str, int], int] = {}
        for r in records:
            nexts[(r.topic, r.partition)] = max(nexts.get((r.topic, r.partition), 0), r.offset + 1)
        async with self.sessions.write() as session:
            stats = await self.processor.apply(session, records)
            await fault_point("fineract.between_effects_and_offsets")
            await store_offsets(session, m.consumer_offsets, self.settings.fineract_group_id, nexts)
        self._count(stats)
        return stats

    async def sweep(self) -> int:
        max_wait = timedelta(seconds=self.settings.fineract_park_timeout_s)
        async with self.sessions.write() as session:
            expired = await self.processor.expire_parked(session, max_wait)
        self._last_sweep = time.monotonic()
        if self._last_sweep - self._last_purge >= self.settings.ingest_dedup_purge_interval_s:
            retention = timedelta(days=self.settings.ingest_dedup_retention_days)
            async with self.sessions.write() as session:
                await purge_messages(session, retention)
            self._last_purge = self._last_sweep
        if expired:
            log.warning("dead-lettered %d events whose loan stayed unknown", expired)
            count_ingest([("dead_lettered", "fineract", "fineract")] * expired)
        return expired

    async def _on_assign(
        self, partitions: frozenset[TopicPartition]
    ) -> Mapping[TopicPartition, int]:
        try:
            async with self.sessions.read() as session:
                stored = await load_offsets(
                    session,
                    m.consumer_offsets,
                    self.settings.fineract_group_id,
                    [(tp.topic, tp.partition) for tp in partitions],
                )
        except DatabaseError:
            log.exception("cannot load stored offsets")
            raise
        log.info("assigned %d partitions; stored offsets: %s", len(partitions), stored)
        return {TopicPartition(t, p): offset for (t, p), offset in stored.items()}

    def _count(self, stats: BatchStats) -> None:
        for name in ("records", "published", "duplicates", "dead_lettered", "parked", "ignored"):
            value = getattr(self.totals, name) + getattr(stats, name)
            setattr(self.totals, name, value)
        self.totals.ignored_types.update(stats.ignored_types)
        self.ignored.count(stats.ignored_types)
        labels = [("accepted", "fineract", "fineract")] * stats.published
        labels += [("duplicate", "fineract", "fineract")] * stats.duplicates
        labels += [("dead_lettered", "fineract", "fineract")] * stats.dead_lettered
        count_ingest(labels)
