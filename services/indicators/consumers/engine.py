"""The aggregation engine: consume the input topics as one group and apply each batch exactly
once (facts + deltas + dedup rows + offsets in one transaction).

On every assignment the consumer seeks to the stored offsets and the owned units are rebuilt
from the database before the next batch (outside the rebalance callback: see
:meth:`Engine.on_assign`). Each batch compare-and-sets the stored offsets of the units it
touches, so an instance that lost a partition in a rebalance cannot write after the new owner
did.

On PostgreSQL the loop is pipelined: while batch N's transaction runs, batch N+1 is fetched,
decoded and applied to the in-memory state (as if N had committed). Which of N+1's events are
duplicates is read from the committed dedup rows plus N's claims; N+1's transaction claims
exactly those it applied and rolls back if another instance claimed one meanwhile. Every failure
(of N or N+1) rebuilds the owned units from the database and seeks back to the stored offsets,
so memory never holds an effect the database lacks past a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import events as ev
from contracts.envelope import ContractViolation
from services.common import siblings
from services.common.aio import raise_if_cancelled
from services.common.bus import (
    Bus,
    Consumer,
    Message,
    Producer,
    Record,
    TopicPartition,
    dead_letter,
)
from services.common.db import database_errors, is_sqlite
from services.common.errors import SpmError
from services.common.faults import fault_point
from services.common.metrics import engine_batch
from services.common.runtime import BatchCollector
from services.common.telemetry import Trail, joined
from services.indicators import models as m
from services.indicators import store
from services.indicators.config import IndicatorSettings
from services.indicators.consumers.apply import (
    KIND_OF_TYPE,
    UnitChanges,
    apply_steps,
    finish_replay,
    replay,
)
from services.indicators.consumers.decode import Decoded, decode
from services.indicators.contributions import Params
from services.indicators.errors import StaleOwnership
from services.indicators.state import UnitState

log = logging.getLogger(__name__)
tracer = trace.get_tracer("spm.indicators.engine")

MAX_BACKOFF_S = 10.0
MIRROR_TIMEOUT_S = 10.0
SIBLINGS_JOIN_S = 2.0
"""How long a worker given every partition at the start waits for its siblings' joins (each
learns of a rebalance at its next heartbeat, every 0.2 s)."""


@dataclass(slots=True)
class Batch:
    """One batch's writes, computed in memory; committed by :meth:`Engine._write`."""

    expected: dict[tuple[str, int], int]
    new_offsets: dict[tuple[str, int], int]
    claims: list[tuple[str, str]]
    records: int
    facts: store.FactColumns = field(default_factory=store.FactColumns)
    deltas: store.DeltaColumns = field(default_factory=store.DeltaColumns)
    upserts: list[dict[str, object]] = field(default_factory=list)
    deletes: list[tuple[int, str, str]] = field(default_factory=list)
    marks: dict[int, int] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    new_sets: dict[int, tuple[str, ...]] = field(default_factory=dict)
    span: trace.Span = trace.INVALID_SPAN
    """The batch's span: put on the emitter's trail when the batch commits, not before (an
    emission before the commit would not see its changes) nor after a yield (an emission woken
    by the commit would publish them under no batch: a new root trace)."""


class Engine:
    def __init__(
        self,
        settings: IndicatorSettings,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        producer: Producer,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.sessions = sessions
        self.producer = producer
        self.params = Params(
            settings.indicators_sla_days,
            settings.indicators_dsti_limit,
            settings.indicators_lender_count,
            settings.indicators_dropout_delay_days,
        )
        self.group_id = settings.indicators_group_id
        self.tz = ZoneInfo(settings.institution_timezone)
        self.client_topics = (settings.clients_topic, settings.loans_topic)
        self.complaints_topic = settings.complaints_topic
        self.units: dict[int, UnitState] = {}
        self._pending: set[int] = set()  # assigned, state not rebuilt yet (see on_assign)
        self._kept: tuple[dict[int, UnitState], dict[tuple[str, int], int]] = ({}, {})  # revoked
        self._dirty = False  # a batch failed: memory may hold what the database lacks
        self._pending_offsets: dict[tuple[str, int], int] = {}  # what on_assign answered
        self.expected: dict[tuple[str, int], int] = {}
        self.seen: set[tuple[str, str]] = set()
        self.set_ids: dict[tuple[str, ...], int] = {}
        self._topic_of: dict[str, str] = {}  # event type -> the input topic it belongs on
        self.known_sets: set[int] = set()
        self._inflight: asyncio.Task[None] | None = None
        self._inflight_claims: set[tuple[str, str]] = set()
        self._mirror: asyncio.Task[None] | None = None
        self._unmirrored: dict[tuple[str, int], int] = {}
        self.lock = asyncio.Lock()
        self.generation = 0
        self.changed = asyncio.Event()
        self.applied = 0
        self.behind = False  # the last fetch brought half a batch or more: catching up
        self._consumer: Consumer | None = None
        self._assigned: frozenset[TopicPartition] = frozenset()
        self.collector = BatchCollector()
        self.trail = Trail()  # the batches' spans, for the emitter's

    # --- units ----------------------------------------------------------------------------------

    def unit_of(self, topic: str, partition: int) -> int:
        return m.COMPLAINT_UNIT_BASE + partition if topic == self.complaints_topic else partition

    def unit_tps(self, unit: int) -> list[tuple[str, int]]:
        if unit >= m.COMPLAINT_UNIT_BASE:
            return [(self.complaints_topic, unit - m.COMPLAINT_UNIT_BASE)]
        return [(topic, unit) for topic in self.client_topics]

    async def _load_units(self, units: set[int]) -> None:
        self.seen, self.known_sets = set(), set()  # re-read: never trust an aborted batch
        for unit in sorted(units):
            tps = self.unit_tps(unit)
            with database_errors():
                async with self.sessions() as session, session.begin():
                    await store.ensure_offsets(session, self.group_id, tps)
                state = UnitState(self.tz)
                async with self.sessions() as session, session.begin():
                    offsets = await store.read_offsets(session, self.group_id, tps)
                    async for facts in store.stream_facts(session, unit):
                        with self.collector.paused():
                            replay(state, facts)
                        await asyncio.sleep(0)  # keep the group heartbeat going
                    seen = await store.load_seen(session)
                    self.known_sets |= await store.load_set_ids(session)
            with self.collector.paused():
                finish_replay(state)
                self.collector.keep()
            self.units[unit] = state
            self.expected.update(offsets)
            self.seen |= seen

    async def _settle(self, *, quiet: bool = False) -> bool:
        """Wait for the in-flight transaction; whether it committed. Its failure is re-raised
        unless ``quiet`` (the caller rebuilds the state from the database anyway)."""
        task = self._inflight
        if task is None:
            return True
        try:
            await asyncio.shield(task)
        except Exception:
            if not quiet:
                raise
            return False
        finally:
            if task.done():  # a cancelled wait leaves it to the next _settle
                self._inflight = None
                self._inflight_claims = set()
        return True

    async def on_assign(self, tps: frozenset[TopicPartition]) -> Mapping[TopicPartition, int]:
        """Answer the stored offsets at once; the units' state is rebuilt by the next batch
        (:meth:`_load_pending`). aiokafka stops heartbeating while this callback runs, so the
        replay of every stored fact it used to do here could outlast the session timeout
        (10 s): the group evicted the member, its rejoin started another rebalance whose
        replays evicted the next member, and two workers spent their time replaying (measured:
        generation 28 after 7 minutes of make bench-indicators on a busy machine).

        A unit this instance owned until the rebalance, and whose stored offsets are still the
        ones it committed last, is taken back as it was kept: nobody wrote to it meanwhile, so
        a replay would rebuild the same state (a worker joining the group cost the others a
        replay of every unit they kept)."""
        async with self.lock:
            await self._settle(quiet=True)
            self.generation += 1
            self._assigned = tps
            self.units.clear()
            self.expected.clear()
            units = {self.unit_of(tp.topic, tp.partition) for tp in tps}
            offsets = await self._stored_offsets(units)
            (kept, was), self._kept = self._kept, ({}, {})
            for unit, state in kept.items():
                tps_of = self.unit_tps(unit)
                if unit in units and all(offsets[tp] == was.get(tp) for tp in tps_of):
                    self.units[unit] = state
            self._pending, self._pending_offsets = units - self.units.keys(), offsets
            self.expected.update(offsets)  # re-read with the facts by _load_pending (kept: equal)
            log.info(
                "indicators: assigned %d partitions (%d units kept, %d to rebuild)",
                len(tps),
                len(self.units),
                len(self._pending),
            )
            return {tp: offsets[(tp.topic, tp.partition)] for tp in tps}

    async def on_revoke(self, tps: frozenset[TopicPartition]) -> None:
        """Keep the units' state for :meth:`on_assign` if memory holds nothing that is not
        committed (the in-flight batch committed, and no batch failed since the last rebuild).
        Otherwise nothing is kept, and what the next assignment rebuilds is clean again."""
        async with self.lock:
            clean = await self._settle(quiet=True) and not self._dirty
            self._kept = (dict(self.units), dict(self.expected)) if clean else ({}, {})
            self._dirty = False
            self.generation += 1
            self.units.clear()
            self.expected.clear()
            self._pending, self._pending_offsets = set(), {}

    async def _stored_offsets(self, units: set[int]) -> dict[tuple[str, int], int]:
        tps = [tp for unit in sorted(units) for tp in self.unit_tps(unit)]
        with database_errors():
            async with self.sessions() as session, session.begin():
                await store.ensure_offsets(session, self.group_id, tps)
            async with self.sessions() as session, session.begin():
                return await store.read_offsets(session, self.group_id, tps)

    async def _load_pending(self) -> None:
        """Rebuild the units assigned last (caller holds ``self.lock``). Their facts and offsets
        are read in one snapshot; offsets that moved since the assignment answered them mean
        another instance wrote meanwhile (this one is a zombie, or about to be reassigned):
        :class:`StaleOwnership`, and the recovery seeks to what is stored."""
        if not self._pending:
            return
        await self._load_units(self._pending)  # on failure they stay pending: _recover loads them
        answered, self._pending, self._pending_offsets = self._pending_offsets, set(), {}
        moved = {tp for tp, offset in answered.items() if self.expected.get(tp) != offset}
        if moved:
            raise StaleOwnership(f"stored offsets moved since the assignment: {moved}")

    async def _recover(self, consumer: Consumer) -> None:
        """After a failed batch: rebuild owned units from the database and seek back."""
        async with self.lock:
            await self._settle(quiet=True)
            self.generation += 1
            units = set(self.units) | self._pending
            self._pending, self._pending_offsets = set(), {}
            self.units.clear()
            self.expected.clear()
            self._kept = ({}, {})
            await self._load_units(units)
            self._dirty = False
            for tp in consumer.assignment():
                stored = self.expected.get((tp.topic, tp.partition))
                if stored is not None:
                    consumer.seek(tp, stored)

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        workers = await siblings.together()
        topics = [*self.client_topics, self.complaints_topic]
        partitions = sum([await self.bus.partition_count(t) for t in topics]) if workers > 1 else 0
        consumer = self.bus.consumer(
            self.group_id,
            topics,
            on_assign=self.on_assign,
            on_revoke=self.on_revoke,
            max_records=self.settings.indicators_batch_size,
        )
        await _start(consumer)
        self._consumer = consumer
        pipelined = not is_sqlite(self.sessions.kw["bind"])
        backoff = 0.1
        try:
            if workers > 1:
                await self._let_siblings_join(consumer, partitions)
            while True:
                raise_if_cancelled()
                generation = self.generation
                with self.collector.paused():  # see BatchCollector
                    records = await consumer.getmany(timeout_ms=0 if self._inflight else 500)
                    # while a batch is in flight a fetch returns what was prefetched, seldom a
                    # full batch (two workers: 14,000 to 19,000 records while catching up)
                    self.behind = len(records) >= self.settings.indicators_batch_size // 2
                    failure = await self._process_or_failure(records, generation, pipelined)
                    if records and failure is None:
                        self.collector.keep()
                if failure is None:
                    backoff = 0.1
                    continue
                retriable = isinstance(failure, SpmError) and failure.retriable
                log.warning("indicators: batch failed (%r); recovering", failure)
                await asyncio.sleep(backoff if retriable else MAX_BACKOFF_S)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                await self._recover(consumer)
        finally:
            await self._settle(quiet=True)
            if self._mirror is not None:
                self._mirror.cancel()
                await asyncio.wait([self._mirror])
            self._consumer = None
            await consumer.stop()

    async def _let_siblings_join(self, consumer: Consumer, partitions: int) -> None:
        """Given every partition although sibling workers started with this one: the broker
        assigned before their joins arrived (a few milliseconds apart), and the rebalance those
        cause would wait for this worker's first batch while they idle (0.7 s or more). Wait
        for that rebalance before fetching, at most ``SIBLINGS_JOIN_S``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SIBLINGS_JOIN_S
        while len(consumer.assignment()) >= partitions:
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.02)

    async def _process_or_failure(
        self, records: list[Record], generation: int, pipelined: bool
    ) -> Exception | None:
        try:
            async with self.lock:
                if not records:
                    await self._settle()  # idle: let the last batch's commit land
                    return None
                stale = generation != self.generation
                parent, links = joined(_traceparents(records))
                with (
                    engine_batch(len(records)),
                    tracer.start_as_current_span(
                        "indicators.batch",
                        context=parent,
                        links=links,
                        attributes={"messaging.batch.message_count": len(records)},
                    ),
                ):
                    await self.process(records, stale=stale, pipelined=pipelined)
        except Exception as exc:  # any failure: rebuild from the database, never skip
            self._dirty = True
            return exc
        return None

    async def process(
        self, records: list[Record], *, stale: bool = False, pipelined: bool = False
    ) -> None:
        """Apply one batch (caller holds ``self.lock``).

        Records below the stored offset were applied already and are skipped. A batch fetched
        across a rebalance (``stale``) that starts above the stored offset may have a hole: its
        partition is sought back to the stored offset instead. ``pipelined``: return once the
        batch is applied in memory and its transaction started (a failure surfaces in the next
        call or in :meth:`_settle`); otherwise return once it committed.
        """
        await self._load_pending()
        by_unit: dict[int, list[Record]] = defaultdict(list)
        next_offsets: dict[tuple[str, int], int] = {}
        rewound: set[tuple[str, int]] = set()
        for r in records:
            key = (r.topic, r.partition)
            unit = self.unit_of(r.topic, r.partition)
            if unit not in self.units or r.offset < self.expected.get(key, 0) or key in rewound:
                continue
            if stale and key not in next_offsets and r.offset > self.expected.get(key, 0):
                rewound.add(key)
                if self._consumer is not None:
                    self._consumer.seek(TopicPartition(*key), self.expected.get(key, 0))
                continue
            by_unit[unit].append(r)
            next_offsets[key] = max(next_offsets.get(key, 0), r.offset + 1)
        if not by_unit:
            return
        if not pipelined:
            await self._settle()
        # which events are claimed already is asked while the batch decodes (the lookup waits on
        # the database most of its time), by the ids the records' headers name
        named = _header_keys(r for recs in by_unit.values() for r in recs)
        lookup = asyncio.ensure_future(self._known(named))
        try:
            decoded = await self._decode_all(by_unit)
            keys = [(e.source, e.id) for events in decoded.values() for e in events]
            known = await lookup
        finally:
            if not lookup.done():
                lookup.cancel()
                await asyncio.wait([lookup])
        unnamed = set(keys).difference(named)  # ids the headers did not give (other encodings)
        if unnamed:
            known |= await self._known(unnamed)
        known |= self._inflight_claims
        touched_tps = {tp for unit in by_unit for tp in self.unit_tps(unit)}
        expected = {tp: self.expected.get(tp, 0) for tp in touched_tps}
        new_offsets = {tp: next_offsets.get(tp, expected[tp]) for tp in touched_tps}
        batch = Batch(expected, new_offsets, [], len(records), span=trace.get_current_span())
        await self._compute(batch, decoded, known)
        # the in-memory state now includes this batch: it commits after the previous one
        await self._settle()
        self.expected.update(new_offsets)
        self.known_sets |= set(batch.new_sets)
        self.seen |= batch.seen
        self._inflight_claims = set(batch.claims)
        self._inflight = asyncio.ensure_future(self._write(batch))
        if not pipelined:
            await self._settle()

    async def _write(self, batch: Batch) -> None:
        with database_errors():
            if batch.new_sets:
                async with self.sessions() as session, session.begin():
                    await store.add_segment_sets(session, batch.new_sets)
            async with self.sessions() as session, session.begin():
                await store.check_and_store_offsets(
                    session, self.group_id, batch.expected, batch.new_offsets
                )
                await fault_point("indicators.between_offsets_and_effects")
                await store.write_batch(
                    session, batch.claims, batch.facts, batch.deltas, batch.marks
                )
                await store.set_resolutions(session, batch.upserts, batch.deletes)
                await store.add_seen(session, batch.seen)
        self.applied += batch.records
        self.trail.add(batch.span)
        self.changed.set()
        self._unmirrored.update(batch.new_offsets)
        if self._mirror is None or self._mirror.done():
            self._mirror = asyncio.ensure_future(self._mirror_offsets())

    async def _mirror_offsets(self) -> None:
        """Copy offsets committed with their batch's effects to the group's Kafka offsets, so lag
        tools (``kafka-consumer-groups.sh --describe``) see the engine's progress.

        The database stays the truth (every assignment seeks to it), so a copy lost to a
        rebalance or an outage costs nothing: a later batch's copy supersedes it. One copy runs
        at a time beside the loop (a commit can wait long for the group coordinator) and takes
        whatever batches committed meanwhile.
        """
        while self._unmirrored and (consumer := self._consumer) is not None:
            owned = consumer.assignment()
            offsets = {
                tp: o
                for (t, p), o in self._unmirrored.items()
                if (tp := TopicPartition(t, p)) in owned
            }
            self._unmirrored = {}
            if not offsets:
                continue
            try:
                async with asyncio.timeout(MIRROR_TIMEOUT_S):  # see services.common.aio
                    await consumer.commit(offsets)
            except (SpmError, TimeoutError) as exc:
                log.debug("indicators: offsets not copied to the group (%r)", exc)

    async def _decode_all(self, by_unit: Mapping[int, list[Record]]) -> dict[int, list[Decoded]]:
        """Each unit's valid events; the others go to the dead-letter topic."""
        decoded: dict[int, list[Decoded]] = {}
        dead: list[Message] = []
        for unit, recs in by_unit.items():
            decoded[unit] = out = []
            for i, r in enumerate(recs):
                event = self._decode(r, dead)
                if event is not None:
                    out.append(event)
                if i % 200 == 199:
                    await asyncio.sleep(0)  # let the in-flight transaction and lookup progress
        if dead:
            await self._dead_letter(dead)
        return decoded

    async def _known(self, keys: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of ``keys`` committed batches claimed."""
        with database_errors():
            async with self.sessions() as session:
                return await store.known_keys(session, list(keys))

    def _decode(self, r: Record, dead: list[Message]) -> Decoded | None:
        try:
            event = decode(r)
        except ContractViolation as exc:
            dead.append(self._dead(r, f"contract violation: {exc}"))
            return None
        expected_topic = self._topic_of.get(event.type)
        if expected_topic is None:
            expected_topic = self._topic_of[event.type] = (
                event.topic + self.settings.indicators_topic_suffix
            )
        if expected_topic != r.topic or event.type == "spm.indicator.changed.v1":
            dead.append(self._dead(r, f"{event.type} does not belong on {r.topic}"))
            return None
        return event

    async def _compute(
        self, batch: Batch, decoded: dict[int, list[Decoded]], known: set[tuple[str, str]]
    ) -> None:
        """Apply the new events to the units' state and collect the batch's rows."""
        claimed: set[tuple[str, str]] = set()
        facts, deltas = batch.facts, batch.deltas
        for unit_id, events in sorted(decoded.items()):
            unit = self.units[unit_id]
            accepted: list[tuple[str, ev.CanonicalData]] = []
            for e in events:
                key = (e.source, e.id)
                if key in known or key in claimed:
                    continue  # a duplicate (a second copy in the same batch is one too)
                claimed.add(key)
                accepted.append((e.source, e.data))
                facts.source.append(e.source)
                facts.body.append(e.body)
                facts.kind.append(KIND_OF_TYPE[e.type])
            if not accepted:
                continue
            facts.unit += [unit_id] * len(accepted)
            facts.seq += range(unit.seq + 1, unit.seq + len(accepted) + 1)
            before_day = unit.max_day
            steps = apply_steps(unit, accepted, self.params)
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    changes: UnitChanges = done.value
                    break
                await asyncio.sleep(0)  # let the in-flight transaction progress
            for (c, segs, d), v in changes.deltas.items():
                if v:
                    sid = self.set_ids.get(segs)
                    if sid is None:
                        sid = self.set_ids[segs] = store.set_id(segs)
                    if sid not in self.known_sets:
                        batch.new_sets[sid] = segs
                    deltas.unit.append(unit_id)
                    deltas.component.append(c)
                    deltas.set_id.append(sid)
                    deltas.day.append(d)
                    deltas.value.append(v)
            for (source, cid), res in changes.resolutions.items():
                if res is None:
                    batch.deletes.append((unit_id, source, cid))
                else:
                    batch.upserts.append(
                        {"unit": unit_id, "source": source, "complaint_id": cid,
                         "branch": res[0], "resolved_day": res[1], "micros": res[2]}
                    )  # fmt: skip
            if unit.max_day is not None and unit.max_day != before_day:
                batch.marks[unit_id] = unit.max_day
            batch.seen |= changes.seen - self.seen
        batch.claims = list(claimed)

    def _dead(self, record: Record, reason: str) -> Message:
        return dead_letter(
            record, reason, service="indicators", topic=self.settings.deadletter_topic
        )

    async def _dead_letter(self, dead: list[Message]) -> None:
        await self.producer.send_many(dead)
        log.warning("indicators: %d record(s) sent to the dead-letter topic", len(dead))


def _traceparents(records: list[Record]) -> Iterator[bytes | None]:
    """The trace context each record carries (the ingest request that published it), or None.
    A plain loop over the headers, as ``Record.header`` would answer: its generator cost a
    batch of 20,000 records some 2% of the engine's time (most records carry none, so every
    header is looked at)."""
    for record in records:
        for name, value in record.headers:
            if name == "traceparent":
                yield value
                break
        else:
            yield None


def _header_keys(records: Iterable[Record]) -> set[tuple[str, str]]:
    """The (source, id) the records' CloudEvents headers name: what ingest publishes, read where
    ``to_kafka`` puts them. A guess at the batch's keys, made before decoding (the caller looks
    up the keys of valid events that it missed)."""
    keys = set()
    id_: bytes | None
    source: bytes | None
    for record in records:
        h = record.headers
        if len(h) > 2 and h[1][0] == "ce_id" and h[2][0] == "ce_source":
            id_, source = h[1][1], h[2][1]
        else:
            headers = dict(h)
            id_, source = headers.get("ce_id"), headers.get("ce_source")
        if source is not None and id_ is not None:
            try:
                keys.add((source.decode(), id_.decode()))
            except UnicodeDecodeError:
                continue
    return keys


async def _start(consumer: Consumer) -> None:
    """Start the consumer; if cancelled meanwhile, let the start finish and stop it, so no
    client is left open."""
    starting = asyncio.ensure_future(consumer.start())
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await starting
            await consumer.stop()
        raise


async def run_forever(engine: Engine) -> None:
    """Run the engine, restarting its consumer after infrastructure failures."""
    while True:
        raise_if_cancelled()
        try:
            await engine.run()
        except SpmError as exc:
            log.warning("indicators: engine stopped (%s); restarting", exc)
            await asyncio.sleep(1.0)
