"""The bus on Apache Kafka (aiokafka); Kafka errors become BusError here and nowhere else."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
)

from contracts.topics import TopicSpec
from services.common.bus.base import (
    Bus,
    BusError,
    BusUnavailable,
    Delivery,
    Headers,
    Message,
    OffsetReset,
    OnAssign,
    OnRevoke,
    Record,
    TopicPartition,
    partition_for_key,
)
from services.common.bus.kafka_batches import SharedBatch, SharedBatches
from services.common.metrics import record_lag
from services.common.telemetry import inject_trace_headers

log = logging.getLogger(__name__)

# Three copies survive one broker's death with acks=all still answering (2 in sync); a smaller
# cluster gets what it can hold.
TARGET_REPLICATION = 3


def replication_for(brokers: int) -> int:
    """Replication factor of a new topic on a cluster of ``brokers``: 3, or fewer if fewer."""
    return max(1, min(TARGET_REPLICATION, brokers))


def min_insync(replicas: int) -> int:
    """``min.insync.replicas``: 2 when there are 3 copies (an acknowledged write is on two
    brokers, and one broker may die), 1 below (a single broker must still accept writes)."""
    return 2 if replicas >= TARGET_REPLICATION else 1


_UNAVAILABLE = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError)


def translate(exc: BaseException, what: str) -> BusError:
    """Map an aiokafka error onto our BusError, keeping whether it is worth retrying."""
    if isinstance(exc, (*_UNAVAILABLE, asyncio.TimeoutError, OSError)):
        return BusUnavailable(f"{what}: Kafka unavailable ({type(exc).__name__}: {exc})")
    retriable = bool(getattr(exc, "retriable", False))
    return BusError(f"{what}: {type(exc).__name__}: {exc}", retriable=retriable)


async def start_or_close(client: AIOKafkaProducer | AIOKafkaConsumer, timeout_s: float) -> None:
    """Start ``client``; if the caller is cancelled meanwhile (a service stopped while it was
    starting), let the start finish, bounded by ``timeout_s``, then close the client.

    aiokafka 0.14 leaks the bootstrap connection when ``start()`` itself is cancelled during
    its metadata request: the socket stays open until the garbage collector finds it.
    """
    starting = asyncio.ensure_future(client.start())
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        await asyncio.wait({starting}, timeout=timeout_s)
        if not starting.done():
            starting.cancel()
        elif not starting.cancelled():
            starting.exception()  # retrieved: the caller is cancelled either way
        await client.stop()
        raise


class KafkaProducer:
    """Idempotent producer with ``acks=all``: an acknowledged record is on every in-sync replica
    and a retried send never duplicates it."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        request_timeout_ms: int,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._security = dict(security or {})
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._batches: SharedBatches | None = None

    @property
    def raw(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise BusError("producer is not started")
        return self._producer

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
            request_timeout_ms=self._request_timeout_ms,
            **self._security,
        )
        try:
            await start_or_close(producer, self._request_timeout_ms / 1000)
        except (KafkaError, OSError) as exc:
            await producer.stop()
            raise translate(exc, "starting producer") from exc
        self._producer = producer
        self._batches = SharedBatches(producer)

    async def stop(self) -> None:
        if self._batches is not None:
            batches, self._batches = self._batches, None
            await batches.close(self._request_timeout_ms / 1000)
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def send(self, message: Message) -> Delivery:
        return (await self.send_many([message]))[0]

    async def send_many(self, messages: Sequence[Message]) -> list[Delivery]:
        """Records appended to their partitions' shared batches (a ``send`` per record costs a
        future, a partitioner call and a queue lookup each); returns once every record is
        acknowledged, the deliveries in the order of ``messages``."""
        if self._batches is None:
            raise BusError("producer is not started")
        try:
            placed = await self._place(self._batches, messages)
            pending = {batch.acked for batch, _ in placed}
            await asyncio.wait(pending)  # not gather: cancelling us must not cancel shared acks
            if any(ack.cancelled() for ack in pending):
                raise BusError("producing: the producer stopped first", retriable=True)
            acks = [(batch.acked.result(), index) for batch, index in placed]
        except (TimeoutError, KafkaError, OSError) as exc:
            raise translate(exc, "producing") from exc
        return [Delivery(ack.topic, ack.partition, ack.offset + index) for ack, index in acks]

    async def _place(
        self, batches: SharedBatches, messages: Sequence[Message]
    ) -> list[tuple[SharedBatch, int]]:
        """Append ``messages`` to their partitions' shared batches: (batch, index) of each."""
        producer = self.raw
        partitions: dict[str, list[int]] = {}
        trace = inject_trace_headers(())  # one request, one trace context
        placed: list[tuple[SharedBatch, int]] = []
        for message in messages:
            partition = message.partition
            if partition is None:
                known = partitions.get(message.topic)
                if known is None:
                    known = partitions[message.topic] = sorted(
                        await producer.partitions_for(message.topic)
                    )
                partition = (
                    known[partition_for_key(message.key, len(known))]
                    if message.key is not None
                    else random.choice(known)  # noqa: S311 - spreading load, not security
                )
            headers = list(message.headers)  # aiokafka's C builder takes a list
            if not any(name == "traceparent" for name, _ in headers):
                headers += trace
            placed.append(
                batches.add(message.topic, partition, message.key, message.value, headers)
            )
        return placed


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: KafkaConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[KafkaTP]) -> None:
        if self._owner.on_revoke is not None:
            await self._owner.on_revoke(frozenset(_ours(tp) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Iterable[KafkaTP]) -> None:
        if self._owner.on_assign is None:
            return
        stored = await self._owner.on_assign(frozenset(_ours(tp) for tp in assigned))
        for tp, offset in stored.items():
            self._owner.seek(tp, offset)


def _ours(tp: KafkaTP) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


class KafkaConsumer:
    """Group consumer with auto-commit off; ``on_assign`` seeks to offsets stored elsewhere."""

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        *,
        client_id: str,
        on_assign: OnAssign | None,
        on_revoke: OnRevoke | None,
        auto_offset_reset: OffsetReset,
        max_records: int,
        request_timeout_ms: int,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.on_assign = on_assign
        self.on_revoke = on_revoke
        self._topics = list(topics)
        self._max_records = max_records
        self._consumer_args: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "max_poll_records": max_records,
            "fetch_max_wait_ms": 100,
            "max_partition_fetch_bytes": 4 * 1024 * 1024,
            "request_timeout_ms": max(request_timeout_ms, 30_000),
            "session_timeout_ms": 10_000,
            # a member learns of a rebalance at its next heartbeat, and the group waits for it:
            # a worker joining an indicator instance idled up to the whole interval (was 1 s)
            "heartbeat_interval_ms": 200,
            "isolation_level": "read_committed",
            # co-partitioned topics (clients + loans) land on the same member, as in Kafka Streams
            "partition_assignment_strategy": (RangePartitionAssignor,),
            **(security or {}),
        }
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def raw(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise BusError("consumer is not started")
        return self._consumer

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(**self._consumer_args)
        consumer.subscribe(self._topics, listener=_Listener(self))
        self._consumer = consumer  # the first assignment (and its seeks) can happen in start()
        try:
            await start_or_close(consumer, self._consumer_args["request_timeout_ms"] / 1000)
        except asyncio.CancelledError:
            self._consumer = None
            raise
        except (KafkaError, OSError) as exc:
            self._consumer = None
            await consumer.stop()
            raise translate(exc, "starting consumer") from exc

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def getmany(self, timeout_ms: int = 1000) -> list[Record]:
        try:
            batches = await self.raw.getmany(timeout_ms=timeout_ms, max_records=self._max_records)
        except KafkaError as exc:
            raise translate(exc, "fetching") from exc
        record_lag(self._consumer_args["group_id"], self.raw, batches)
        return [
            _record(r)
            for tp in sorted(batches, key=lambda t: (t.topic, t.partition))
            for r in batches[tp]
        ]

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        try:
            if offsets is None:
                await self.raw.commit()
            else:
                await self.raw.commit(
                    {KafkaTP(tp.topic, tp.partition): o for tp, o in offsets.items()}
                )
        except KafkaError as exc:
            raise translate(exc, "committing") from exc

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(_ours(tp) for tp in self.raw.assignment())

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.raw.seek(KafkaTP(tp.topic, tp.partition), offset)


class KafkaBus(Bus):
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "spm-monitor",
        request_timeout_ms: int = 10_000,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.security: dict[str, Any] = dict(security or {})  # kafka_client_options(settings)
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms

    def producer(self) -> KafkaProducer:
        return KafkaProducer(
            self.bootstrap,
            client_id=self._client_id,
            request_timeout_ms=self._request_timeout_ms,
            security=self.security,
        )

    def consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        *,
        on_assign: OnAssign | None = None,
        on_revoke: OnRevoke | None = None,
        auto_offset_reset: OffsetReset = "earliest",
        max_records: int = 500,
    ) -> KafkaConsumer:
        return KafkaConsumer(
            self.bootstrap,
            group_id,
            topics,
            client_id=self._client_id,
            on_assign=on_assign,
            on_revoke=on_revoke,
            auto_offset_reset=auto_offset_reset,
            max_records=max_records,
            request_timeout_ms=self._request_timeout_ms,
            security=self.security,
        )

    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        wanted = list(specs)
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            request_timeout_ms=self._request_timeout_ms,
            **self.security,
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing_specs = [s for s in wanted if s.name not in existing]
            replicas = replication_for(await self._broker_count(admin)) if missing_specs else 1
            missing = [
                NewTopic(
                    s.name,
                    s.partitions,
                    replicas,
                    topic_configs=s.configs() | {"min.insync.replicas": str(min_insync(replicas))},
                )
                for s in missing_specs
            ]
            if missing:
                try:
                    await admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    log.info("topics created concurrently by another process")
                await self._await_leaders(admin, [t.name for t in missing])
        except KafkaError as exc:
            raise translate(exc, "provisioning topics") from exc
        finally:
            await admin.close()

    async def _broker_count(self, admin: AIOKafkaAdminClient) -> int:
        """Brokers the cluster reports now (the admin client's metadata, not a setting)."""
        cluster = await admin.describe_cluster()
        return len(cluster["brokers"])

    async def _await_leaders(self, admin: AIOKafkaAdminClient, names: list[str]) -> None:
        """Topic creation completes asynchronously: a produce right after it can meet 'unknown
        topic' or 'no leader' (a fresh broker answered the first requests with 503 that way)."""
        deadline = asyncio.get_running_loop().time() + self._request_timeout_ms / 1000
        while True:
            topics = await admin.describe_topics(names)
            if len(topics) == len(names) and all(
                t["error_code"] == 0
                and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"])
                for t in topics
            ):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise BusUnavailable(f"topics {', '.join(names)} have no leader yet")
            await asyncio.sleep(0.1)

    async def partition_count(self, topic: str) -> int:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            request_timeout_ms=self._request_timeout_ms,
            **self.security,
        )
        try:
            await consumer.start()
            partitions = await _topic_partitions(consumer, topic)
        except KafkaError as exc:
            raise translate(exc, "describing topic") from exc
        finally:
            await consumer.stop()
        if not partitions:
            raise BusError(f"topic {topic} does not exist")
        return len(partitions)

    async def tail(self, topic: str, count: int) -> list[Record]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=self._client_id,
            request_timeout_ms=max(self._request_timeout_ms, 30_000),
            enable_auto_commit=False,
            **self.security,
        )
        try:
            await consumer.start()
            return await _read_tail(consumer, topic, count, self._request_timeout_ms / 1000)
        except KafkaError as exc:
            raise translate(exc, "reading topic tail") from exc
        finally:
            await consumer.stop()

    async def group_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            request_timeout_ms=self._request_timeout_ms,
            **self.security,
        )
        try:
            await admin.start()
            committed = await admin.list_consumer_group_offsets(group_id)
        except KafkaError as exc:
            raise translate(exc, "reading group offsets") from exc
        finally:
            await admin.close()
        return {_ours(tp): meta.offset for tp, meta in committed.items() if meta.offset >= 0}

    async def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=self._client_id,
            request_timeout_ms=self._request_timeout_ms,
            enable_auto_commit=False,
            **self.security,
        )
        try:
            await consumer.start()
            tps = [
                KafkaTP(t, p) for t in topics for p in sorted(await _topic_partitions(consumer, t))
            ]
            ends = await consumer.end_offsets(tps) if tps else {}
        except KafkaError as exc:
            raise translate(exc, "reading end offsets") from exc
        finally:
            await consumer.stop()
        return {_ours(tp): int(offset) for tp, offset in ends.items()}


_header_value = itemgetter(1)


def _record(r: ConsumerRecord[bytes, bytes]) -> Record:
    """Kafka allows null header values; such a header reads as absent rather than crashing.
    aiokafka's header values are bytes already: only a null one costs a rebuilt tuple."""
    headers = tuple(r.headers)
    if None in map(_header_value, headers):
        headers = tuple(h for h in headers if h[1] is not None)
    return Record(
        r.topic, r.partition, r.offset, r.key, r.value, cast(Headers, headers), r.timestamp
    )


async def _topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """Partition ids of ``topic`` from fresh cluster metadata (``partitions_for_topic`` is not a
    coroutine and answers from a cache that lacks topics the consumer does not follow)."""
    cluster = await consumer._client.fetch_all_metadata()
    return set(cluster.partitions_for_topic(topic) or ())


async def _read_tail(
    consumer: AIOKafkaConsumer, topic: str, count: int, timeout_s: float
) -> list[Record]:
    partitions = await _topic_partitions(consumer, topic)
    if not partitions:
        raise BusError(f"topic {topic} does not exist")
    tps = [KafkaTP(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    begins = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    pending = {tp: ends[tp] for tp in tps if ends[tp] > begins[tp]}
    for tp in pending:
        consumer.seek(tp, max(begins[tp], ends[tp] - count))
    out: list[Record] = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while pending:
        if asyncio.get_running_loop().time() > deadline:
            raise BusUnavailable(f"reading the tail of {topic} timed out")
        batches = await consumer.getmany(*pending, timeout_ms=200)
        for tp, records in batches.items():
            out += [_record(r) for r in records if r.offset < pending.get(tp, 0)]
        for tp in list(pending):
            if await consumer.position(tp) >= pending[tp]:
                del pending[tp]
    return sorted(out, key=lambda r: (r.partition, r.offset))
