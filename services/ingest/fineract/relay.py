"""The outbox relay: publishes the outbox in ``seq`` order, each record exactly once.

On Kafka every batch of outbox rows is produced in one Kafka transaction together with the
relay's progress, committed as the offset of a consumer group of its own
(``send_offsets_to_transaction``). Either both the records and the new progress become visible,
or neither: a crash at any instant leaves a progress that says exactly which rows are on the
topics. On restart the fixed ``transactional.id`` fences the dead incarnation and aborts its open
transaction; the relay then resumes from the committed progress (or from the database copy of
it, whichever is further). Readers of the canonical topics use ``read_committed``.

On the in-process bus (embedded mode) there are no transactions and nothing survives a crash
anyway; that relay publishes and then records its progress.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.bus import Bus, BusError, KafkaBus, Producer
from services.common.bus.kafka import start_or_close, translate
from services.ingest.fineract.store import OutboxRow, mark_relayed, pending_outbox, relayed

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]


class _Stoppable(Protocol):
    async def stop(self) -> None: ...


class OutboxRelay(ABC):
    _producer: _Stoppable | None  # each relay's own producer, while started

    def __init__(self, sessions: Sessions, batch: int) -> None:
        self._sessions = sessions
        self._batch = batch
        self._next: int | None = None
        self.published = 0

    @abstractmethod
    async def start(self) -> None: ...

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    @abstractmethod
    async def _progress(self) -> int:
        """Next outbox seq to publish, as the broker knows it (0 when unknown)."""

    @abstractmethod
    async def _publish(self, rows: list[OutboxRow], next_seq: int) -> None:
        """Publish ``rows`` and record ``next_seq`` as progress, atomically if possible."""

    async def flush(self) -> int:
        """Publish everything pending; returns how many records were published."""
        if self._next is None:
            async with self._sessions() as session:
                stored = await relayed(session)
            self._next = max(stored, await self._progress())
        total = 0
        while True:
            async with self._sessions() as session:
                rows = await pending_outbox(session, self._next, self._batch)
            if not rows:
                return total
            next_seq = rows[-1].seq + 1
            try:
                await self._publish(rows, next_seq)
            except BaseException:
                self._next = None  # re-read the committed progress before trying again
                raise
            self._next = next_seq
            total += len(rows)
            self.published += len(rows)
            async with self._sessions.begin() as session:
                await mark_relayed(session, next_seq)


class KafkaTransactionalRelay(OutboxRelay):
    def __init__(
        self,
        sessions: Sessions,
        batch: int,
        *,
        bootstrap: str,
        transactional_id: str,
        progress_topic: str,
        client_id: str = "spm-ingest-fineract",
        security: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(sessions, batch)
        self._bootstrap = bootstrap
        self._security = dict(security or {})  # kafka_client_options(settings), as the bus
        self._transactional_id = transactional_id
        self._group = f"{transactional_id}.progress"
        self._tp = KafkaTP(progress_topic, 0)
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            transactional_id=self._transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
            **self._security,
        )
        try:
            # InitProducerId: fences and aborts a dead incarnation
            await start_or_close(producer, timeout_s=40)  # aiokafka's default request timeout
        except (KafkaError, OSError) as exc:
            await producer.stop()
            raise translate(exc, "starting transactional producer") from exc
        self._producer = producer
        self._next = None

    async def _progress(self) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, **self._security)
        try:
            await admin.start()
            offsets = await admin.list_consumer_group_offsets(self._group, partitions=[self._tp])
        except (KafkaError, OSError) as exc:
            raise translate(exc, "reading relay progress") from exc
        finally:
            await admin.close()
        committed = offsets.get(self._tp)
        return max(0, committed.offset) if committed is not None else 0

    async def _publish(self, rows: list[OutboxRow], next_seq: int) -> None:
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None  # noqa: S101 - start() sets it
        try:
            async with producer.transaction():
                for row in rows:
                    msg = row.message
                    await producer.send(
                        msg.topic, msg.value, key=msg.key, headers=list(msg.headers)
                    )
                await producer.send_offsets_to_transaction({self._tp: next_seq}, self._group)
        except (KafkaError, OSError, TimeoutError) as exc:
            await self.stop()  # a failed transactional producer is rebuilt (and re-fenced)
            raise translate(exc, "publishing the outbox") from exc


class BusRelay(OutboxRelay):
    """At-least-once relay over any bus (the in-process one has no transactions)."""

    def __init__(self, sessions: Sessions, batch: int, bus: Bus) -> None:
        super().__init__(sessions, batch)
        self._bus = bus
        self._producer: Producer | None = None

    async def start(self) -> None:
        producer = self._bus.producer()
        await producer.start()
        self._producer = producer

    async def _progress(self) -> int:
        return 0

    async def _publish(self, rows: list[OutboxRow], next_seq: int) -> None:
        if self._producer is None:
            raise BusError("relay is not started")
        await self._producer.send_many([row.message for row in rows])


def create_relay(
    bus: Bus, sessions: Sessions, *, batch: int, transactional_id: str, progress_topic: str
) -> OutboxRelay:
    if isinstance(bus, KafkaBus):
        return KafkaTransactionalRelay(
            sessions,
            batch,
            bootstrap=bus.bootstrap,
            transactional_id=transactional_id,
            progress_topic=progress_topic,
            security=bus.security,
        )
    return BusRelay(sessions, batch, bus)
