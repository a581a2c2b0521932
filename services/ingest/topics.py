"""``INGEST_TOPIC_SUFFIX``: the topics ingest publishes to, renamed for runs sharing a broker.

The suffix is applied to each record as it leaves for the producer, so validation and the
pipeline keep using the catalog's names; without a suffix the producer is used as it is (no cost
on the hot path). The indicator service's ``INDICATORS_TOPIC_SUFFIX`` reads the same names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from contracts.topics import TopicSpec
from services.common.bus import Delivery, Message, Producer


def suffixed(specs: Iterable[TopicSpec], suffix: str) -> list[TopicSpec]:
    """The catalog's topics under their suffixed names (for provisioning)."""
    return [dataclasses.replace(spec, name=spec.name + suffix) for spec in specs]


class SuffixedProducer:
    """A producer that appends ``suffix`` to the topic of every record it sends."""

    def __init__(self, inner: Producer, suffix: str) -> None:
        self._inner = inner
        self._suffix = suffix

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    def _renamed(self, message: Message) -> Message:
        return dataclasses.replace(message, topic=message.topic + self._suffix)

    async def send(self, message: Message) -> Delivery:
        return await self._inner.send(self._renamed(message))

    async def send_many(self, messages: Sequence[Message]) -> list[Delivery]:
        return await self._inner.send_many([self._renamed(m) for m in messages])


def with_suffix(producer: Producer, suffix: str) -> Producer:
    """``producer`` itself without a suffix, else a :class:`SuffixedProducer` around it."""
    return SuffixedProducer(producer, suffix) if suffix else producer
