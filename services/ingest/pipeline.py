"""The one path every adapter sends events through: validate -> pseudonymise -> dedup -> publish.

HTTP, CSV, the CRM webhook and the Fineract adapter all end here, so the rules are the same
whichever door an event comes through.

Exactly-once publishing, per (source, id):

1. in one database transaction, claim the events' dedup keys (``INSERT … ON CONFLICT DO
   NOTHING``): a key claimed by a concurrent, still-open request blocks until that one ends, so
   two requests never both publish the same event;
2. publish the newly claimed events and wait for Kafka's ``acks=all`` on each;
3. commit. If some sends failed, their claims are deleted before the commit (so a retry is
   accepted again) while the claims of events Kafka did take are kept (so a retry reports them
   as duplicates instead of publishing them twice), and the caller is told nothing was accepted.

A crash between Kafka's acknowledgement and the commit loses the claims, not the events: the
events are on Kafka and a retry publishes them again. That window is the time of one commit;
consumers dedup on (source, id) anyway (ARCHITECTURE "exactly-once effect").

Each claim keeps a hash of the event's content (``validation.content_hash``). An id that comes
back with the same content is a ``duplicate``; with other content it is a ``conflict``: refused,
the first content stays (consumers would drop it as a duplicate anyway, silently).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry import trace
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import FieldError
from contracts.topics import DEADLETTER
from services.common.bus import Delivery, Message, Producer
from services.common.db import DatabaseError, Sessions
from services.common.metrics import count_ingest
from services.common.offsets import claim_new, stored_hashes
from services.ingest.errors import PublishFailed
from services.ingest.models import ingested_events
from services.ingest.store import unclaim
from services.ingest.validation import DedupKey, Invalid, Outgoing, Validator

log = logging.getLogger(__name__)
tracer = trace.get_tracer("spm.ingest.pipeline")

Status = Literal["accepted", "duplicate", "conflict", "rejected"]
Published = Literal["accepted", "duplicate", "conflict"]
CONFLICT_REASON = "this id was accepted before with other content; the first content stays"
SEND_CHUNK = 250
"""Records per ``send_many``: the unit that succeeds or fails together."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one input event, by its position in the request."""

    index: int
    id: str | None
    status: Status
    errors: tuple[FieldError, ...] = ()


@dataclass(slots=True)
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


class IngestPipeline:
    """Validation, pseudonymisation, dedup and publishing, shared by every adapter."""

    def __init__(
        self,
        *,
        producer: Producer,
        sessions: Sessions,
        validator: Validator,
        dedup: Table = ingested_events,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self.producer = producer
        self.publish_timeout_s = publish_timeout_s
        self._in_doubt: set[DedupKey] = set()
        self._settlers: set[asyncio.Task[None]] = set()
        self.sessions = sessions
        self.validator = validator
        self.dedup = dedup

    def prepare(self, obj: Any) -> Outgoing:
        """Validate and pseudonymise one structured input event; raises ``Invalid``."""
        return self.validator.prepare(obj)

    async def ingest(self, objs: Sequence[Any]) -> BatchResult:
        """Run structured input events through the whole pipeline in one transaction.

        Raises :class:`PublishFailed` when Kafka or the database failed: then nothing was
        accepted (a retry of the same events is safe).
        """
        with tracer.start_as_current_span("ingest.batch") as span:
            result, ready = self._validate_all(objs)
            if ready:
                statuses = await self.publish_in_transaction([o for _, o in ready])
                for (index, item), status in zip(ready, statuses, strict=True):
                    errors = (FieldError("id", CONFLICT_REASON),) if status == "conflict" else ()
                    result.outcomes.append(Outcome(index, item.id, status, errors))
                result.outcomes.sort(key=lambda o: o.index)
            self._count(result, dict(ready))
            span.set_attribute("spm.ingest.events", len(objs))
            span.set_attribute("spm.ingest.accepted", result.count("accepted"))
            return result

    def _validate_all(self, objs: Sequence[Any]) -> tuple[BatchResult, list[tuple[int, Outgoing]]]:
        result = BatchResult()
        ready: list[tuple[int, Outgoing]] = []
        for index, obj in enumerate(objs):
            try:
                if isinstance(obj, Invalid):  # refused while parsing (a bad NDJSON line)
                    raise obj
                item = self.prepare(obj)
            except Invalid as exc:
                result.outcomes.append(Outcome(index, exc.event_id, "rejected", tuple(exc.errors)))
                continue
            ready.append((index, item))
        return result, ready

    async def publish_in_transaction(self, items: Sequence[Outgoing]) -> list[Published]:
        """:meth:`publish` in a transaction of its own; committed also after a partial failure,
        so the events Kafka did take stay claimed."""
        failure: PublishFailed | None = None
        try:
            async with self.sessions.write() as session:
                try:
                    return await self.publish(session, items)
                except PublishFailed as exc:
                    failure = exc  # leaving the block commits the claims that are kept
        except DatabaseError as exc:
            log.error("dedup store failed: %s", exc.code or type(exc.__cause__).__name__)
            raise PublishFailed("dedup store unavailable", dependency="database") from exc
        assert failure is not None  # noqa: S101 - the block either returned or failed
        raise failure

    async def publish(self, session: AsyncSession, items: Sequence[Outgoing]) -> list[Published]:
        """Claim, publish and await the acks of ``items`` in the caller's transaction.

        Returns per item ``accepted`` (published), ``duplicate`` (its id was claimed before, in
        this batch or earlier, with the same content) or ``conflict`` (with other content). On
        :class:`PublishFailed` the claims of events Kafka did not take have been deleted in the
        session; the caller should still commit it (without its own effects) so the events that
        did reach Kafka stay claimed.
        """
        first: dict[DedupKey, int] = {}
        for position, item in enumerate(items):
            first.setdefault(item.key, position)
        if self._in_doubt.intersection(first):
            raise PublishFailed("an earlier attempt to publish some of these events is pending")
        keys = sorted(first)
        hashes = {key: items[first[key]].content_hash for key in keys}
        claimed = await claim_new(session, self.dedup, keys, hashes)
        if self._in_doubt.intersection(claimed):  # went in doubt while we waited for a lock
            await unclaim(session, self.dedup, sorted(claimed))
            raise PublishFailed("an earlier attempt to publish some of these events is pending")
        to_send = [(key, items[first[key]]) for key in first if key in claimed]
        failed, pending = await self._send([item.message for _, item in to_send])
        if failed or pending:
            await unclaim(session, self.dedup, [to_send[i][0] for i in failed + list(pending)])
            if pending:
                self._settle_later({to_send[i][0]: task for i, task in pending.items()}, hashes)
            raise PublishFailed(
                f"Kafka did not acknowledge {len(failed) + len(pending)} of {len(to_send)} events"
            )
        seen = (
            {}
            if len(claimed) == len(keys)
            else await stored_hashes(
                session, self.dedup, [key for key in keys if key not in claimed]
            )
        )
        return [
            self._status(item, position, first, claimed, seen, items)
            for position, item in enumerate(items)
        ]

    @staticmethod
    def _status(
        item: Outgoing,
        position: int,
        first: dict[DedupKey, int],
        claimed: set[DedupKey],
        seen: dict[DedupKey, bytes | None],
        items: Sequence[Outgoing],
    ) -> Published:
        key = item.key
        if key in claimed:
            if first[key] == position:
                return "accepted"
            earlier: bytes | None = items[first[key]].content_hash
        else:
            earlier = seen.get(key)  # None: claimed before content was hashed
        return "duplicate" if earlier is None or earlier == item.content_hash else "conflict"

    async def _send(
        self, messages: Sequence[Message]
    ) -> tuple[list[int], dict[int, asyncio.Task[list[Delivery]]]]:
        """Send in chunks and await every ack for up to the publish timeout.

        Returns the positions that failed and the sends still pending at the deadline (Kafka
        unreachable: the producer keeps retrying them, so they may still land). A chunk fails
        or succeeds as a whole: if Kafka took part of a failed chunk, a retry publishes that
        part again (consumers dedup on source and id); a pending chunk is followed to its end.
        """
        if not messages:
            return [], {}
        chunks = [
            (
                start,
                asyncio.ensure_future(
                    self.producer.send_many(messages[start : start + SEND_CHUNK])
                ),
            )
            for start in range(0, len(messages), SEND_CHUNK)
        ]
        done, _ = await asyncio.wait([t for _, t in chunks], timeout=self.publish_timeout_s)
        failed: list[int] = []
        pending: dict[int, asyncio.Task[list[Delivery]]] = {}
        errors: set[str] = set()
        for start, task in chunks:
            positions = range(start, min(start + SEND_CHUNK, len(messages)))
            if task not in done:
                pending.update(dict.fromkeys(positions, task))
            elif (error := task.exception()) is not None:
                failed += positions
                errors.add(type(error).__name__)
        if failed or pending:
            log.warning(
                "publish failed: %d of %d events not acknowledged (%d pending) %s",
                len(failed) + len(pending),
                len(messages),
                len(pending),
                ",".join(sorted(errors)),
            )
        return failed, pending

    def _settle_later(
        self,
        pending: dict[DedupKey, asyncio.Task[list[Delivery]]],
        hashes: dict[DedupKey, bytes],
    ) -> None:
        """Follow sends that outlived their request: claim those Kafka takes after all.

        Until they settle their keys are *in doubt*: a retry is refused (503) rather than
        publishing a second copy next to one the producer may still deliver.
        """
        self._in_doubt.update(pending)
        task = asyncio.create_task(self._settle(pending, hashes))
        self._settlers.add(task)
        task.add_done_callback(self._settlers.discard)

    async def _settle(
        self,
        pending: dict[DedupKey, asyncio.Task[list[Delivery]]],
        hashes: dict[DedupKey, bytes],
    ) -> None:
        try:
            await asyncio.wait(set(pending.values()))
            delivered = [k for k, t in pending.items() if not t.cancelled() and not t.exception()]
            if delivered:
                async with self.sessions.write() as session:
                    await claim_new(session, self.dedup, sorted(delivered), hashes)
            log.info(
                "late sends settled: %d delivered, %d failed",
                len(delivered),
                len(pending) - len(delivered),
            )
        except DatabaseError as exc:
            log.error("could not record late deliveries (a retry may duplicate): %s", exc.code)
        finally:
            self._in_doubt.difference_update(pending)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Give pending sends a chance to settle (their claims recorded) before shutdown."""
        if self._settlers:
            await asyncio.wait(list(self._settlers), timeout=timeout_s)
        for task in list(self._settlers):
            task.cancel()

    async def dead_letter(
        self,
        *,
        value: bytes | None,
        key: bytes | None,
        reason: str,
        source: str,
        event_type: str = "unknown",
        headers: Iterable[tuple[str, bytes]] = (),
    ) -> None:
        """Park input that cannot be accepted on the dead-letter topic, with the reason.

        For Kafka-fed adapters; ``reason`` and ``headers`` must not carry personal data.
        """
        all_headers = (
            ("error.reason", reason.encode()),
            ("error.source", source.encode()),
            *headers,
        )
        await self.producer.send(Message(DEADLETTER.name, value, key, tuple(all_headers)))
        count_ingest([("dead_lettered", event_type, source)])

    def _count(self, result: BatchResult, events: dict[int, Outgoing]) -> None:
        labels = []
        for outcome in result.outcomes:
            event = events.get(outcome.index)
            type_, source = (event.type, event.source) if event else ("invalid", "invalid")
            labels.append((outcome.status, type_, source))
        count_ingest(labels)
