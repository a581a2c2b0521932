"""The engine's guarantees: poison records go to the dead-letter topic and the rest is applied;
restarts neither lose nor double-count; a zombie instance cannot write, nor a batch whose event
another instance claimed meanwhile; two instances share the work; the value stream publishes
changes in order per key."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from decimal import Decimal

import pytest
from sqlalchemy import Table, func, select

from contracts.envelope import CanonicalEvent, to_kafka
from services.common.bus import Bus, Message, Record, TopicPartition
from services.common.faults import injected
from services.indicators import models as m
from services.indicators import store
from services.indicators.consumers import engine as engine_module
from services.indicators.consumers.engine import Engine
from services.indicators.errors import ClaimRace, ParametersChanged, StaleOwnership
from services.indicators.service import IndicatorService
from tests.indicators.conftest import Harness
from tests.indicators.events import disb, event, message, pid, reg


async def _read(
    bus: Bus, topic: str, count: int, group: str, limit_s: float = 30.0
) -> list[Record]:
    consumer = bus.consumer(group, [topic], auto_offset_reset="earliest")
    await consumer.start()
    out: list[Record] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while len(out) < count and loop.time() < deadline:
            out += await consumer.getmany(timeout_ms=200)
    finally:
        await consumer.stop()
    return out


async def test_poison_records_go_to_the_dead_letter_topic(harness: Harness, unique: str) -> None:
    h = harness
    good = to_kafka(reg("A", "2024-01-01"))
    topic = h.settings.clients_topic
    headers = tuple(good.headers)
    invalid = json.dumps(
        {"client_pid": pid("Z"), "gender": "female", "registered_on": "2024-01-01"}
    )
    wrong_type = [(k, b"spm.nothing.v1" if k == "ce_type" else v) for k, v in headers]
    await h.send(
        [
            Message(topic, b"\xff{not json", good.key, headers),
            Message(topic, invalid.encode(), good.key, headers),  # branch_id missing
            Message(topic, good.value, good.key, tuple(wrong_type)),
            Message(topic, good.value, good.key, ()),  # no CloudEvents attributes at all
            reg("A", "2024-01-01"),
            reg("B", "2024-01-02"),
        ]
    )
    assert await h.v("active_clients", "all", "2024-01-02") == 2
    dead = await _read(h.bus, h.settings.deadletter_topic, 4, f"dlq-{unique}")
    assert len(dead) == 4
    reasons = [r.header("error.reason") for r in dead]
    assert all(reason for reason in reasons)
    assert any(b"branch_id" in (reason or b"") for reason in reasons)
    assert all(r.header("error.source") == b"indicators" for r in dead)
    assert all(r.header("error.topic") == topic.encode() for r in dead)
    assert {r.header("error.offset") for r in dead} == {b"0", b"1", b"2", b"3"}
    assert dead[0].value == b"\xff{not json"


async def test_restart_neither_loses_nor_double_counts(harness: Harness) -> None:
    h = harness
    first = [reg(f"c{i}", "2024-01-01") for i in range(20)]
    await h.send(first + [disb(f"L{i}", f"c{i}", "2024-01-02", "100") for i in range(20)])
    assert await h.v("gross_loan_portfolio", "all", "2024-01-02") == 2000
    await h.restart()
    await h.send([disb("L99", "c1", "2024-01-03", "50"), *first[:5]])  # 5 duplicates
    assert await h.v("gross_loan_portfolio", "all", "2024-01-03") == 2050
    assert await h.v("active_clients", "all", "2024-01-03") == 20
    assert await h.v("active_borrowers", "all", "2024-01-03") == 20


async def test_duplicates_are_known_whatever_the_order_of_their_headers(harness: Harness) -> None:
    """The engine asks which events are claimed while it decodes, by the ids the headers name
    where ingest puts them; copies with the headers elsewhere, or with a repeated ``ce_id``
    (the last one counts), are duplicates all the same."""
    h = harness
    first = [disb(f"L{i}", "c1", "2024-01-02", "100") for i in range(3)]
    await h.send([reg("c1", "2024-01-01"), *first])
    assert await h.v("gross_loan_portfolio", "all", "2024-01-02") == 300
    again = [message(e, h.settings.indicators_topic_suffix) for e in first]
    reordered = dataclasses.replace(again[0], headers=again[0].headers[::-1])
    decoy = again[1].headers[:3]  # where ingest puts them, with an id the last one overrides
    decoy = (decoy[0], ("ce_id", b"never-sent"), decoy[2])
    repeated = dataclasses.replace(again[1], headers=decoy + again[1].headers)
    late = disb("L9", "c1", "2024-01-03", "50")
    await h.send([reordered, repeated, again[2], late])
    assert await h.v("gross_loan_portfolio", "all", "2024-01-03") == 350


async def test_a_zombie_cannot_write_after_the_new_owner(harness: Harness) -> None:
    h = harness
    await h.send([reg("A", "2024-01-01")])
    zombie = IndicatorService(h.settings, h.bus)
    try:
        engine = zombie.engine
        tps = frozenset(
            tp
            for tp in [*h.service.engine._assigned]  # the owner's partitions, all of them
        )
        await engine.on_assign(tps)
        before = dict(h.ends)
        await h.send([reg("B", "2024-01-01")])  # the owner advances the stored offsets
        late = to_kafka(reg("C", "2024-01-01"))
        key = next(tp for tp, end in h.ends.items() if before.get(tp) != end)
        part = key[1]
        records = [
            Record(key[0], part, engine.expected[key], late.key, late.value, tuple(late.headers))
        ]
        async with engine.lock:
            with pytest.raises(StaleOwnership):
                await engine.process(records)
    finally:
        await zombie.db.dispose()
    assert await h.v("active_clients", "all", "2024-01-01") == 2


async def test_an_assignment_replays_nothing_in_the_callback_and_the_next_batch_does(
    harness: Harness,
) -> None:
    """aiokafka does not heartbeat while the assignment callback runs: a replay there outlasted
    the session timeout and got the member evicted (a rebalance storm with two workers). The
    callback answers the stored offsets; the next batch rebuilds the state before applying."""
    h = harness
    await h.send([reg("A", "2024-01-01"), disb("LA", "A", "2024-01-02", "100")])
    other = IndicatorService(h.settings, h.bus)
    try:
        engine = other.engine
        tps = frozenset(h.service.engine._assigned)
        answered = await engine.on_assign(tps)
        assert engine.units == {}  # nothing replayed in the callback
        assert {(tp.topic, tp.partition): o for tp, o in answered.items()} == {
            tp: h.ends.get(tp, 0) for tp in ((tp.topic, tp.partition) for tp in tps)
        }
        async with engine.lock:
            await engine.process([])  # nothing to apply: the state is rebuilt all the same
        loan = next(u.loans for u in engine.units.values() if u.loans)
        assert [d.amount for d in (s.disb for s in loan.values()) if d] == [100 * 10**4]
    finally:
        await other.db.dispose()


async def test_a_rebalance_keeps_the_units_nobody_wrote_to_meanwhile(harness: Harness) -> None:
    """A worker joining the group revokes every partition of the others and assigns most of them
    back: those whose stored offsets did not move are kept as they were, not replayed."""
    h = harness
    await h.send([reg("A", "2024-01-01"), disb("LA", "A", "2024-01-02", "100")])
    engine = h.service.engine
    tps = engine._assigned
    before = dict(engine.units)
    await engine.on_revoke(tps)
    await engine.on_assign(tps)
    assert engine._pending == set()
    assert all(engine.units[unit] is state for unit, state in before.items())
    await h.send([disb("LB", "A", "2024-01-03", "50")])
    assert await h.v("gross_loan_portfolio", "all", "2024-01-03") == 150


def _next_record(engine: Engine, topic: str, event: CanonicalEvent) -> Record:
    """The record of ``event`` at the next offset ``engine`` expects on its partition."""
    r = to_kafka(event)
    part = next(
        p for t, p in engine.expected if t == topic and engine.unit_of(t, p) in engine.units
    )
    return Record(topic, part, engine.expected[(topic, part)], r.key, r.value, tuple(r.headers))


async def test_a_rebalance_rebuilds_a_unit_another_instance_wrote_to(harness: Harness) -> None:
    h = harness
    await h.send([reg("A", "2024-01-01")])
    engine = h.service.engine
    tps = engine._assigned
    await engine.on_revoke(tps)
    other = IndicatorService(h.settings, h.bus)  # the partitions' owner meanwhile
    try:
        await other.engine.on_assign(tps)
        async with other.engine.lock:
            await other.engine.process([])
            record = _next_record(other.engine, h.settings.clients_topic, reg("B", "2024-01-01"))
            await other.engine.process([record])
    finally:
        await other.db.dispose()
    await engine.on_assign(tps)
    unit = engine.unit_of(record.topic, record.partition)
    assert unit in engine._pending  # rebuilt by the next batch, with the other's event
    async with engine.lock:
        await engine.process([])
    assert pid("B") in engine.units[unit].clients


@pytest.mark.parametrize("pipelined", [False, True])
async def test_a_rebalance_after_a_failed_batch_keeps_nothing(
    harness: Harness, pipelined: bool
) -> None:
    """The failed batch was applied in memory, not in the database: every unit is rebuilt; and
    once rebuilt, the next rebalance keeps them again."""
    h = harness
    await h.send([reg("A", "2024-01-01")])
    tps = h.service.engine._assigned
    other = IndicatorService(h.settings, h.bus)
    try:
        engine = other.engine
        await engine.on_assign(tps)
        async with engine.lock:
            await engine.process([])
        record = _next_record(engine, h.settings.clients_topic, reg("B", "2024-01-01"))

        async def crash() -> None:
            raise InjectedCrash

        with injected("indicators.between_offsets_and_effects", crash):
            failure = await engine._process_or_failure([record], engine.generation, pipelined)
            assert (failure is None) == pipelined  # pipelined: it fails in the background
            await engine.on_revoke(tps)
        await engine.on_assign(tps)
        assert engine.units == {}
        assert engine._pending == {engine.unit_of(tp.topic, tp.partition) for tp in tps}
        async with engine.lock:
            await engine.process([])  # rebuilt from the database
        rebuilt = dict(engine.units)
        await engine.on_revoke(tps)
        await engine.on_assign(tps)
        assert engine.units == rebuilt
        assert engine._pending == set()
    finally:
        await other.db.dispose()


async def test_a_batch_with_an_event_claimed_meanwhile_writes_nothing(harness: Harness) -> None:
    """Another instance claimed one of the batch's events after the batch was computed (on
    PostgreSQL the claims go in by COPY, which the conflict fails): the whole batch rolls back."""
    h = harness
    claimed = reg("A", "2024-01-01")
    await h.send([claimed])
    fresh = reg("B", "2024-01-01")

    async def facts() -> int:
        async with h.service.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(m.facts)) or 0)

    before = await facts()
    rows = store.FactColumns([0], [10**9], [1], [fresh.source], [fresh.data.model_dump_json()])
    async with h.service.sessions() as session:
        with pytest.raises(ClaimRace):
            async with session.begin():
                await session.execute(select(1))  # the batch's first statement (offsets)
                claims = [(fresh.source, fresh.id), (claimed.source, claimed.id)]
                await store.write_batch(session, claims, rows, store.DeltaColumns(), {0: 1})
    assert await facts() == before
    async with h.service.sessions() as session:
        known = await store.known_keys(session, [(fresh.source, fresh.id)])
    assert known == set()  # the fresh event's claim went with the rest


async def test_the_group_offsets_follow_the_stored_ones(harness: Harness) -> None:
    """Lag tools read the group's Kafka offsets: the engine copies its stored ones there."""
    h = harness
    await h.send([reg(f"c{i}", "2024-01-01") for i in range(20)])
    await h.send([disb(f"L{i}", f"c{i}", "2024-01-02", "10") for i in range(20)])
    stored = {tp: o for tp, o in (await h.stored_offsets()).items() if o > 0}
    assert sum(stored.values()) == 40
    group = h.settings.indicators_group_id
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        committed = await h.bus.group_offsets(group)
        if {(tp.topic, tp.partition): o for tp, o in committed.items() if o > 0} == stored:
            break
        assert loop.time() < deadline, f"group offsets {committed} never reached {stored}"
        await asyncio.sleep(0.2)


async def test_a_changed_parameter_is_refused(harness: Harness) -> None:
    """The stored deltas were computed with the first start's parameters: another DSTI limit
    would mix two definitions, so the service refuses to start and says what to do."""
    h = harness
    await h.send([disb("L1", "c1", "2024-01-02", "100")])
    limit = h.settings.indicators_dsti_limit
    other = IndicatorService(
        h.settings.model_copy(update={"indicators_dsti_limit": limit / 2}), h.bus
    )
    try:
        with pytest.raises(ParametersChanged) as refused:
            await other.start(run=False)
    finally:
        await other.db.dispose()
    message = str(refused.value)
    assert f"INDICATORS_DSTI_LIMIT is {limit / 2} but" in message
    assert f"computed with {limit}" in message and "INDICATORS_DB_SCHEMA" in message
    padded = limit.quantize(Decimal("0.0001"))  # the same value written differently (0.5000)
    same = IndicatorService(h.settings.model_copy(update={"indicators_dsti_limit": padded}), h.bus)
    await same.start(run=False)
    await same.stop()
    assert await h.v("gross_loan_portfolio", "all", "2024-01-02") == 100
    line = IndicatorService(
        h.settings.model_copy(update={"indicators_poverty_line": "usd_3.20"}), h.bus
    )
    try:
        with pytest.raises(ParametersChanged) as refused:
            await line.start(run=False)
    finally:
        await line.db.dispose()
    assert "INDICATORS_POVERTY_LINE is usd_3.20 but" in str(refused.value)


async def test_a_schema_computed_with_older_definitions_is_refused(harness: Harness) -> None:
    """A schema whose parameters were recorded before the definitions version was (1.0) holds
    sums of the older definitions: the service refuses to add to them."""
    h = harness
    await h.send([disb("L1", "c1", "2024-01-02", "100")])
    async with h.service.sessions() as session, session.begin():
        await session.execute(
            m.parameters.delete().where(m.parameters.c.name == "INDICATORS_DEFINITIONS")
        )
    older = IndicatorService(h.settings, h.bus)
    try:
        with pytest.raises(ParametersChanged) as refused:
            await older.start(run=False)
    finally:
        await older.db.dispose()
    assert "INDICATORS_DEFINITIONS is 1.1 but the stored indicators were computed with 1.0" in str(
        refused.value
    )


async def test_two_instances_share_the_work(harness: Harness) -> None:
    h = harness
    second = IndicatorService(h.settings, h.bus)
    await second.start()
    try:
        events = [reg(f"c{i}", "2024-01-01", f"B{i % 3}") for i in range(60)]
        await h.send(events[:30])
        await h.send(
            events[30:]
            + [disb(f"L{i}", f"c{i}", "2024-01-02", "10", f"B{i % 3}") for i in range(60)]
        )
        assert await h.v("active_clients", "all", "2024-01-02") == 60
        assert await h.v("gross_loan_portfolio", "all", "2024-01-02") == 600
        assert await h.v("active_borrowers", "branch:B1", "2024-01-02") == 20
    finally:
        await second.stop()
    await h.send([disb("L100", "c1", "2024-01-03", "5")])  # the survivor takes over
    assert await h.v("gross_loan_portfolio", "all", "2024-01-03") == 605


async def test_value_stream_publishes_changes_in_order(harness: Harness, unique: str) -> None:
    h = harness
    await h.send([reg("A", "2024-01-01")])
    await _wait(lambda: h.service.emitter.published > 0)
    published = h.service.emitter.published
    await h.send([reg("B", "2024-01-01")])
    await _wait(lambda: h.service.emitter.published > published)
    records = await _read(h.bus, h.settings.output_topic, published + 1, f"out-{unique}")
    mine = [r for r in records if r.key == b"active_clients|all"]
    assert [json.loads(r.value or b"")["value"] for r in mine] == ["1", "2"]
    last = json.loads(mine[-1].value or b"")
    assert last["previous_value"] == "1" and last["as_of"] == "2024-01-01"
    assert last["numerator"] == "2" and last["denominator"] is None
    assert mine[-1].header("ce_type") == b"spm.indicator.changed.v1"
    assert len({r.partition for r in mine}) == 1
    assert Decimal(last["value"]) == 2


async def _wait(condition: object, limit_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


_ = event


class InjectedCrash(Exception):
    """Raised at a fault point: the transaction around it aborts as if the process died."""


async def test_a_crash_between_offsets_and_effects_loses_and_doubles_nothing(
    harness: Harness,
) -> None:
    """Deterministic: the batch fails after its offsets were written and before its effects;
    the instance is then replaced. Everything is applied exactly once afterwards."""
    h = harness
    clients = [reg(f"k{i}", "2024-01-01") for i in range(10)]
    await h.send(clients)
    assert await h.v("active_clients", "all", "2024-01-01") == 10
    crashed = asyncio.Event()

    async def crash() -> None:
        crashed.set()
        raise InjectedCrash

    loans = [disb(f"K{i}", f"k{i}", "2024-01-02", "100") for i in range(10)]
    with injected("indicators.between_offsets_and_effects", crash):
        await h.send(loans, wait=False)
        await asyncio.wait_for(crashed.wait(), 60)
    await h.restart()  # the replacement instance starts from what the database holds
    await h.caught_up()
    assert await h.v("gross_loan_portfolio", "all", "2024-01-02") == 1000
    assert await h.v("active_borrowers", "all", "2024-01-02") == 10
    assert await h.v("active_clients", "all", "2024-01-02") == 10


async def test_a_batch_commits_its_new_segment_sets_before_itself(harness: Harness) -> None:
    """Segment sets are content-addressed and shared by every unit. A batch commits the new ones
    in a transaction of their own: a worker adding a set waits for whichever transaction holds
    it, and two workers of one instance waited for each other's whole batches (1.3 s of waits
    per 300,000 events in bench-indicators). A batch that fails afterwards leaves them unused."""
    h = harness

    async def count(table: Table) -> int:
        async with h.service.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)

    await h.send([reg("A", "2024-01-01")])
    sets, deltas = await count(m.segment_sets), await count(m.deltas)
    crashed = asyncio.Event()

    async def crash() -> None:
        crashed.set()
        raise InjectedCrash

    with injected("indicators.between_offsets_and_effects", crash):
        await h.send([disb("L1", "A", "2024-01-02", "100")], wait=False)
        await asyncio.wait_for(crashed.wait(), 60)
        assert await count(m.segment_sets) > sets
        assert await count(m.deltas) == deltas
    await h.restart()
    await h.caught_up()
    assert await h.v("gross_loan_portfolio", "all", "2024-01-02") == 100


class _Assignment:
    """A consumer as far as the engine's start looks at it: what it was assigned, until when."""

    def __init__(self, partitions: int, until_s: float) -> None:
        self.partitions = partitions
        self.until = asyncio.get_running_loop().time() + until_s

    def assignment(self) -> frozenset[TopicPartition]:
        if asyncio.get_running_loop().time() >= self.until:
            return frozenset()  # revoked: the siblings' rebalance began
        return frozenset(TopicPartition("t", p) for p in range(self.partitions))


async def test_a_worker_given_every_partition_at_the_start_waits_for_its_siblings(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers started together join a few milliseconds apart, and the first may be given every
    partition: it fetches nothing until the rebalance the others cause, or for SIBLINGS_JOIN_S."""
    engine = harness.service.engine
    loop = asyncio.get_running_loop()
    started = loop.time()
    await engine._let_siblings_join(_Assignment(15, 0.3), 15)
    assert 0.3 <= loop.time() - started < 1.0
    started = loop.time()
    await engine._let_siblings_join(_Assignment(7, 30), 15)
    assert loop.time() - started < 0.1  # its share: nobody else is coming
    monkeypatch.setattr(engine_module, "SIBLINGS_JOIN_S", 0.2)
    started = loop.time()
    await engine._let_siblings_join(_Assignment(15, 30), 15)
    assert 0.2 <= loop.time() - started < 1.0  # the siblings never came: start alone
