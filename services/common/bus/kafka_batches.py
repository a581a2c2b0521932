"""Record batches that concurrent senders share, one partition at a time.

aiokafka keeps at most one queued batch per partition: ``send_batch`` waits until the queued
one is drained. If every caller built its own batch, concurrent callers would queue up behind
each other, a round trip each, with many small batches. And aiokafka 0.14's ``add_batch`` charges
each round of that wait with the time since the first round, so several waiters on one
partition got ``KafkaTimeoutError`` after a fraction of ``request_timeout_ms`` on a healthy
broker (ingest answered 503 under load).

Here each partition has one *open* batch that every sender appends to, and a shipper that hands
it to aiokafka when the partition's previous batch is queued. While the shipper waits, the open
batch keeps filling. So aiokafka sees one waiter per partition (whose first round is charged
right), and batches grow with the load, as aiokafka's own ``send`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiokafka import AIOKafkaProducer

TopicAndPartition = tuple[str, int]
HeaderList = list[tuple[str, bytes]]


class SharedBatch:
    """One record batch under construction, and the broker's answer for it once sent."""

    __slots__ = ("builder", "_count", "acked")

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.builder = producer.create_batch()
        self._count = 0
        self.acked: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acked.add_done_callback(_retrieve)  # a sender may be gone when it fails

    def append(self, key: bytes | None, value: bytes | None, headers: HeaderList) -> int | None:
        """The record's index in the batch, or None when the batch is full."""
        if self.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            return None
        self._count += 1
        return self._count - 1


class SharedBatches:
    """The open batch of each partition, and the shippers that send them in order."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._open: dict[TopicAndPartition, SharedBatch] = {}
        self._turns: dict[TopicAndPartition, asyncio.Lock] = {}
        self._shippers: set[asyncio.Task[None]] = set()

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: HeaderList,
    ) -> tuple[SharedBatch, int]:
        """Append a record to the partition's open batch: (the batch, the record's index)."""
        tp = (topic, partition)
        batch = self._open.get(tp)
        if batch is not None:
            index = batch.append(key, value, headers)
            if index is not None:
                return batch, index
        batch = self._open[tp] = SharedBatch(self._producer)
        shipper = asyncio.create_task(self._ship(tp, batch))
        self._shippers.add(shipper)
        shipper.add_done_callback(self._shippers.discard)
        index = batch.append(key, value, headers)
        if index is None:  # aiokafka's builder takes a first record of any size
            raise AssertionError("an empty record batch refused a record")
        return batch, index

    async def _ship(self, tp: TopicAndPartition, batch: SharedBatch) -> None:
        """Hand ``batch`` to aiokafka after the partition's earlier batches, and relay the ack."""
        try:
            async with self._turns.setdefault(tp, asyncio.Lock()):
                if self._open.get(tp) is batch:
                    del self._open[tp]  # closed: later records start the next batch
                sent = await self._producer.send_batch(batch.builder, tp[0], partition=tp[1])
            metadata = await sent
        except asyncio.CancelledError:
            batch.acked.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every sender of the batch gets it
            batch.acked.set_exception(exc)
        else:
            batch.acked.set_result(metadata)

    async def close(self, timeout_s: float) -> None:
        """Ship what is open (before the producer stops), waiting at most ``timeout_s``."""
        if self._shippers:
            await asyncio.wait(set(self._shippers), timeout=timeout_s)
        for shipper in self._shippers:
            shipper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._shippers, return_exceptions=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
