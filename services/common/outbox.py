"""Transactional outbox: messages written with the change they announce, relayed to the bus later.

A service calls :func:`enqueue` in the same transaction as its change, so a message exists if and
only if the change committed. One :class:`OutboxRelay` per outbox (a PostgreSQL advisory lock
elects it) publishes committed rows and marks them sent.

Exactly once on the topic, even when the relay dies between publishing and marking:

* The relay numbers rows itself (``seq``), in a committed transaction, *before* publishing them,
  and publishes in ``seq`` order; each record carries its number in the ``outbox-seq`` header.
  Numbering at relay time (not insert time) matters: a transaction that committed late may hold
  a lower insert id than rows already published.
* Each row's partition is fixed before publishing (the key's murmur2 hash, as Kafka clients do),
  and the idempotent producer keeps per-partition order, so what reached a partition is always a
  prefix of the rows meant for it. On start, and after any failed send, the relay reads the tail
  of every partition: a numbered, unsent row whose ``seq`` is at most the highest ``outbox-seq``
  on its partition was published already and is only marked sent.

One outbox per topic: the relay trusts the ``outbox-seq`` headers it finds there.
Order per key is commit order provided writers of one key serialise on a lock (a row lock or an
advisory lock) taken before :func:`enqueue`; the insert id then follows commit order per key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.common.advisory import LeadershipWait, discard, try_lock
from services.common.aio import wait_event
from services.common.bus import Bus, BusUnavailable, Message, Producer, partition_for_key
from services.common.db import Sessions, UtcDateTime, database_errors, is_sqlite
from services.common.errors import SpmError
from services.common.metrics import OUTBOX_BACKLOG
from services.common.telemetry import inject_trace_headers

log = logging.getLogger(__name__)

SEQ_HEADER = "outbox-seq"
TAIL_RECORDS = 50
"""Records read from the end of each partition on recovery (only the newest is normally needed;
the rest tolerates a few records written by someone else)."""


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """The outbox of one service, in that service's metadata (and migrations)."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("topic", String(255), nullable=False),
        Column("key", LargeBinary, nullable=True),
        Column("value", LargeBinary, nullable=True),
        Column("headers", JSON, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("seq", BigInteger, nullable=True, unique=True),
        Column("partition", Integer, nullable=True),
        Column("sent_at", UtcDateTime, nullable=True),
        Index(f"ix_{name}_pending", "sent_at", "seq"),
    )


async def enqueue(session: AsyncSession, table: Table, message: Message) -> None:
    """Add ``message`` to the outbox in the caller's transaction (which the caller commits).

    The current trace context is stored with it, so the trace continues when it is relayed.
    """
    headers = inject_trace_headers(message.headers)
    await session.execute(
        table.insert().values(
            topic=message.topic,
            key=message.key,
            value=message.value,
            headers=[[name, base64.b64encode(value).decode()] for name, value in headers],
            created_at=datetime.now(UTC),
            partition=message.partition,
        )
    )


async def prune_sent(session: AsyncSession, table: Table, sent_before: datetime) -> int:
    """Delete rows sent before ``sent_before``; returns how many. Safe at any time: numbering
    continues above the highest ``outbox-seq`` on the topic even when no sent row is left."""
    c = table.c
    result = await session.execute(
        delete(table).where(c.sent_at.is_not(None), c.sent_at < sent_before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


KEEP_SENT = timedelta(days=7)
"""How long a published row stays in the outbox (for an operator looking into a delivery)."""
PRUNE_INTERVAL_S = 3600.0


class RelayLockLost(SpmError):
    retriable = True


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    seq: int
    topic: str
    partition: int
    message: Message


Hook = Callable[[Sequence[OutboxRow]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RelayHooks:
    """Points where tests (and only tests) inject a crash: after the rows are numbered and that
    is committed but before publishing, and after publishing but before marking them sent."""

    before_publish: Hook | None = None
    after_publish: Hook | None = None


class OutboxRelay:
    """Publishes committed outbox rows in order; one active relay per outbox (advisory lock)."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        bus: Bus,
        *,
        lock_name: str,
        batch_size: int = 100,
        poll_interval_s: float = 1.0,
        retry_interval_s: float = 2.0,
        start_timeout_s: float = 15.0,
        keep_sent: timedelta = KEEP_SENT,
        prune_interval_s: float = PRUNE_INTERVAL_S,
        hooks: RelayHooks | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = Sessions(engine)
        self._table = table
        self._bus = bus
        self._lock_name = lock_name
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._retry_interval_s = retry_interval_s
        self._start_timeout_s = start_timeout_s
        self._keep_sent = keep_sent
        self._prune_interval_s = prune_interval_s
        self._pruned_at = -math.inf
        self._hooks = hooks or RelayHooks()
        self._wakeup = asyncio.Event()
        self._partitions: dict[str, int] = {}
        self._high: dict[tuple[str, int], int] = {}
        """Highest ``outbox-seq`` seen per (topic, partition) in the tails read."""
        self._learned: set[str] = set()
        self._holding = False
        """Whether the current lock connection holds the advisory lock."""
        self._waiting = LeadershipWait(f"outbox relay {lock_name}")
        self._stopping = False
        self.published = 0
        """Records published by this relay so far (observability, tests)."""

    def notify(self) -> None:
        """Wake the relay now (call after committing a transaction that enqueued messages)."""
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        """Relay until :meth:`stop`; survives bus and database outages by retrying."""
        while not self._stopping:
            try:
                await self._run_elected()
            except (SpmError, OSError) as exc:
                if self._stopping:
                    break
                log.warning("outbox relay %s: %s; retrying", self._lock_name, exc)
                await self._sleep(self._retry_interval_s)
            except Exception:  # noqa: BLE001 - a relay that dies leaves the outbox unpublished
                # e.g. a client library's own error from stopping a producer: nothing awaits
                # this task until the service stops, so dying here would be silent.
                if self._stopping:
                    break
                log.exception("outbox relay %s: unexpected error; retrying", self._lock_name)
                await self._sleep(self._retry_interval_s)

    async def drain(self) -> int:
        """Publish everything pending once, holding the lock; returns the records published.

        For command-line use and tests; a service runs :meth:`run` instead.
        """
        async with self._lock_connection() as lock_conn:
            if not await self._try_lock(lock_conn):
                raise RelayLockLost(f"another relay holds {self._lock_name}")
            producer = self._bus.producer()
            try:
                await self._start(producer)
                await self._recover()
                total = 0
                while n := await self._relay_batch(producer):
                    total += n
                return total
            finally:
                await producer.stop()

    async def _run_elected(self) -> None:
        async with self._lock_connection() as lock_conn:
            while not await self._try_lock(lock_conn):
                self._waiting.lost()
                if self._stopping:
                    return
                await self._sleep(self._retry_interval_s)
            self._waiting.won()
            producer = self._bus.producer()
            try:
                await self._start(producer)  # inside: a broker still down must not keep the lock
                await self._recover()
                while not self._stopping:
                    await self._check_lock(lock_conn)
                    # A failed send leaves this loop; the producer is stopped (nothing of ours
                    # is in flight any more) before the next round recovers from the tail.
                    if not await self._relay_batch(producer):
                        await self._prune_if_due()
                        await self._sleep(self._poll_interval_s)
            finally:
                await producer.stop()

    async def _prune_if_due(self) -> None:
        """Delete rows sent longer ago than ``keep_sent``, at most every ``prune_interval_s``
        and only while idle: the outbox would otherwise keep every message ever sent."""
        if time.monotonic() - self._pruned_at < self._prune_interval_s:
            return
        self._pruned_at = time.monotonic()
        async with self._sessions.write() as session:
            pruned = await prune_sent(session, self._table, datetime.now(UTC) - self._keep_sent)
        if pruned:
            log.info("outbox relay %s: pruned %d sent row(s)", self._lock_name, pruned)

    async def _start(self, producer: Producer) -> None:
        """Start ``producer``, giving up after ``start_timeout_s``: an idempotent producer that
        reached the broker just as it stopped waits for its producer id without end, and the
        relay would sit out the outage holding the lock and deaf to :meth:`stop`."""
        try:
            async with asyncio.timeout(self._start_timeout_s):
                await producer.start()
        except TimeoutError as exc:
            raise BusUnavailable(
                f"starting producer: no producer id within {self._start_timeout_s:g} s"
            ) from exc

    async def _sleep(self, seconds: float) -> None:
        await wait_event(self._wakeup, seconds)
        self._wakeup.clear()

    # --- election ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lock_connection(self) -> AsyncIterator[AsyncConnection]:
        """The connection that holds the relay's session advisory lock, closed for good after.

        A session lock outlives transactions, and the pool only rolls back a connection it
        takes back. Returned to the pool still holding the lock (a round that failed before
        unlocking, or whose unlock failed), it kept every relay of this outbox, this one
        included, from being elected until the pool closed that connection: the objectives
        service published nothing after a broker outage. So the connection is invalidated
        rather than returned, which ends its session and with it the lock. (SQLite: one
        process, no lock, and its pool's connection is kept.)
        """
        async with self._engine.connect() as conn:
            self._holding = False
            try:
                yield conn
            finally:
                if not is_sqlite(conn):
                    await discard(conn, self._lock_name if self._holding else None)
                self._holding = False

    async def _try_lock(self, conn: AsyncConnection) -> bool:
        if is_sqlite(conn):
            return True  # embedded mode: one process
        with database_errors():
            self._holding = await try_lock(conn, self._lock_name)
        return self._holding

    async def _check_lock(self, conn: AsyncConnection) -> None:
        """The lock lives as long as its connection; a dead connection means we lost it."""
        if is_sqlite(conn):
            return
        with database_errors():
            await conn.execute(text("SELECT 1"))
            await conn.commit()

    # --- relaying ---------------------------------------------------------------------------------

    async def _relay_batch(self, producer: Producer) -> int:
        await self._number_new_rows()
        OUTBOX_BACKLOG.labels(self._lock_name).set(await self._backlog())
        rows = await self._numbered_unsent()
        if not rows:
            return 0
        if self._hooks.before_publish:
            await self._hooks.before_publish(rows)
        await producer.send_many([row.message for row in rows])
        if self._hooks.after_publish:
            await self._hooks.after_publish(rows)
        await self._mark_sent([row.id for row in rows])
        self.published += len(rows)
        return len(rows)

    async def _number_new_rows(self) -> None:
        """Give committed, unnumbered rows the next ``seq`` values and their partition.

        Numbers continue above anything already on the topic, so a fresh database next to an
        old topic can never mistake a new row for a published one.
        """
        c = self._table.c
        async with self._sessions.read() as session:
            topics = set(await session.scalars(select(c.topic).distinct().where(c.seq.is_(None))))
        for topic in sorted(topics - self._learned):
            await self._learn(topic)
        async with self._sessions.write() as session:
            new = (
                await session.execute(
                    select(c.id, c.topic, c.key, c.partition)
                    .where(c.seq.is_(None))
                    .order_by(c.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not new:
                return
            top = await session.scalar(select(func.coalesce(func.max(c.seq), 0)))
            next_seq = max([int(top or 0), *self._high.values()]) + 1
            for offset, (row_id, topic, key, partition) in enumerate(new):
                seq = next_seq + offset
                chosen = await self._partition(topic, key, partition, seq)
                await session.execute(
                    update(self._table).where(c.id == row_id).values(seq=seq, partition=chosen)
                )

    async def _partition(self, topic: str, key: bytes | None, given: int | None, seq: int) -> int:
        if given is not None:
            return given
        if topic not in self._partitions:
            self._partitions[topic] = await self._bus.partition_count(topic)
        count = self._partitions[topic]
        return partition_for_key(key, count) if key is not None else seq % count

    async def _backlog(self) -> int:
        """Rows committed and not yet published (the metric; an index scan on ix_*_pending)."""
        c = self._table.c
        async with self._sessions.read() as session:
            found = await session.scalar(select(func.count()).where(c.sent_at.is_(None)))
        return int(found or 0)

    async def _numbered_unsent(self) -> list[OutboxRow]:
        c = self._table.c
        async with self._sessions.read() as session:
            result = await session.execute(
                select(c.id, c.seq, c.topic, c.partition, c.key, c.value, c.headers)
                .where(c.seq.is_not(None), c.sent_at.is_(None))
                .order_by(c.seq)
                .limit(self._batch_size)
            )
            return [_row(*r) for r in result.all()]

    async def _mark_sent(self, ids: Sequence[int]) -> None:
        c = self._table.c
        async with self._sessions.write() as session:
            await session.execute(
                update(self._table).where(c.id.in_(ids)).values(sent_at=datetime.now(UTC))
            )

    # --- recovery ---------------------------------------------------------------------------------

    async def _learn(self, topic: str) -> None:
        """Read the end of every partition of ``topic`` for the highest seq published there."""
        for record in await self._bus.tail(topic, TAIL_RECORDS):
            seq = _seq_of(record.header(SEQ_HEADER))
            if seq is not None:
                tp = (record.topic, record.partition)
                self._high[tp] = max(self._high.get(tp, 0), seq)
        self._learned.add(topic)

    async def _recover(self) -> None:
        """Mark sent the numbered rows the topic already holds (published before a crash)."""
        c = self._table.c
        async with self._sessions.read() as session:
            topics = set(await session.scalars(select(c.topic).distinct()))
        for topic in sorted(topics):
            await self._learn(topic)
        high = self._high
        async with self._sessions.write() as session:
            pending = (
                await session.execute(
                    select(c.id, c.seq, c.topic, c.partition).where(
                        c.seq.is_not(None), c.sent_at.is_(None)
                    )
                )
            ).all()
            done = [
                row_id
                for row_id, seq, topic, partition in pending
                if seq <= high.get((topic, partition), 0)
            ]
            if done:
                log.info(
                    "outbox %s: %d row(s) published before a crash", self._lock_name, len(done)
                )
                await session.execute(
                    update(self._table).where(c.id.in_(done)).values(sent_at=datetime.now(UTC))
                )


def _seq_of(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.decode())
    except (UnicodeDecodeError, ValueError):
        return None


def _row(
    row_id: int,
    seq: int,
    topic: str,
    partition: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[Any],
) -> OutboxRow:
    stored = tuple((str(name), base64.b64decode(encoded)) for name, encoded in headers)
    message = Message(
        topic,
        value,
        key=key,
        headers=(*stored, (SEQ_HEADER, str(seq).encode())),
        partition=partition,
    )
    return OutboxRow(row_id, seq, topic, partition, message)
