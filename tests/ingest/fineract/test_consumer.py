"""The Fineract consumer on the real Kafka and PostgreSQL: samples in, canonical events out."""

from __future__ import annotations

import asyncio
import struct
from collections import Counter

import pytest

from contracts.envelope import from_kafka
from services.ingest.fineract.config import FineractSettings
from services.ingest.pseudonym import Pseudonymiser
from tests.ingest.fineract.conftest import (
    PEPPER,
    Out,
    fineract_records,
    make_settings,
    produce,
    read_outputs,
    running_consumer,
    wait_outputs,
)
from tests.ingest.fineract.helpers import manifest, renumbered, sample_bytes, sample_events

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SOURCE = "fineract:default"


def canonical(outputs: list[Out]) -> list[Out]:
    return [o for o in outputs if "ce_id" in o.headers]


def dead(outputs: list[Out]) -> list[Out]:
    return [o for o in outputs if "error.reason" in o.headers]


async def nothing_more(bootstrap: str, s: FineractSettings) -> list[Out]:
    """The outputs once a marker sent now came out, without it: the outbox is relayed in order,
    so nothing older is still to come. The marker is a client creation no test uses otherwise."""
    created = next(e for e in sample_events() if e.type == "ClientCreateBusinessEvent")
    marker = renumbered(created, 99_999_999, client=999_999, loan=999_999)
    marker_id = marker.envelope["idempotencyKey"]
    await produce(bootstrap, s.fineract_topic, fineract_records([marker]))
    outputs = await wait_outputs(bootstrap, s, lambda o: marker_id in {x.id for x in canonical(o)})
    assert marker_id in {x.id for x in canonical(outputs)}, "the marker never came out"
    return [o for o in outputs if "ce_id" not in o.headers or o.id != marker_id]


def sample_records() -> list[tuple[bytes | None, bytes]]:
    return [(bytes.fromhex(e["kafka_key_hex"]), sample_bytes(e)) for e in manifest()]


async def test_every_sample_becomes_the_right_canonical_events(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    s = fineract_settings
    await produce(kafka_bootstrap, s.fineract_topic, sample_records())
    async with running_consumer(s):
        outputs = await wait_outputs(kafka_bootstrap, s, lambda o: len(canonical(o)) >= 4)
    events = canonical(outputs)
    assert dead(outputs) == []
    keys = {e["envelope"]["type"]: e["envelope"]["idempotencyKey"] for e in manifest()}
    pid = Pseudonymiser(PEPPER).client_pid(SOURCE, "1042")
    by_type = {o.type: o for o in events}
    assert sorted(by_type) == [
        "spm.client.registered.v1",
        "spm.loan.delinquency.v1",
        "spm.loan.disbursed.v1",
        "spm.loan.repayment.v1",
    ]
    assert len(events) == 4  # activation repeats the registration; the disbursal
    # transaction view and the overdue notice have no canonical event of their own
    for out in events:
        event = from_kafka(out.value, list(out.headers.items()))  # valid contract v1
        assert event.source == SOURCE
        assert out.key == pid.encode()
        assert event.data.client_pid == pid  # type: ignore[attr-defined]
    reg = by_type["spm.client.registered.v1"]
    assert reg.topic == f"{s.fineract_topic_prefix}spm.clients.v1"
    assert reg.id == keys["ClientCreateBusinessEvent"]
    assert {k: v for k, v in reg.data().items() if v is not None} == {
        "client_pid": pid,
        "branch_id": "2",
        "gender": "female",
        "birth_year": 1990,
        "registered_on": "2026-03-01",
    }
    disbursed = by_type["spm.loan.disbursed.v1"]
    assert disbursed.topic == f"{s.fineract_topic_prefix}spm.loans.v1"
    assert disbursed.id == keys["LoanDisbursalBusinessEvent"]
    data = disbursed.data()
    assert data["loan_id"] == "fineract:default:5310"
    assert data["amount"] == "20000.00" and data["currency"] == "KES"
    assert data["officer_pid"] == Pseudonymiser(PEPPER).officer_pid(SOURCE, "7")
    repayment = by_type["spm.loan.repayment.v1"].data()
    assert repayment["transaction_id"] == "fineract:default:88107"
    assert repayment["amount"] == "3633.33" and repayment["principal_paid"] == "3333.33"
    delinquency = by_type["spm.loan.delinquency.v1"]
    assert delinquency.id == keys["BulkBusinessEvent"] + "#1"
    assert delinquency.data()["days_past_due"] == 1
    raw = b"".join(o.value or b"" for o in outputs)
    for personal in (b"Amina", b"+254700000000", b"1990-06-15", b"CRM-77812"):
        assert personal not in raw


async def test_corrupt_and_unknown_records_are_dead_lettered_and_the_rest_flows(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    s = fineract_settings
    old_envelope = b"\xc3\x01" + bytes.fromhex("1fd07bcc226c7826") + b"\x02\x00"
    good = sample_records()
    corrupt = (good[2][0], good[2][1][:40])
    await produce(
        kafka_bootstrap, s.fineract_topic, [corrupt, (struct.pack(">q", 7), old_envelope)]
    )
    await produce(kafka_bootstrap, s.fineract_topic, good)
    async with running_consumer(s):
        outputs = await wait_outputs(
            kafka_bootstrap, s, lambda o: len(canonical(o)) >= 4 and len(dead(o)) >= 2
        )
    letters = dead(outputs)
    assert len(canonical(outputs)) == 4
    assert sorted(o.headers["error.reason"] for o in letters) == [
        b"corrupt",
        b"unknown_fingerprint",
    ]
    for letter in letters:
        assert letter.topic == f"{s.fineract_topic_prefix}spm.ingest.deadletter.v1"
        assert letter.headers["error.source"] == b"fineract"
        assert letter.headers["error.topic"] == s.fineract_topic.encode()
        assert int(letter.headers["error.partition"]) in range(3)
        assert int(letter.headers["error.offset"]) >= 0
    unknown = next(o for o in letters if o.headers["error.reason"] == b"unknown_fingerprint")
    # keyed by its origin, never by Fineract's key (the aggregate root id: a raw client id)
    assert (
        unknown.key
        == (
            f"{s.fineract_topic}/{unknown.headers['error.partition'].decode()}/"
            f"{unknown.headers['error.offset'].decode()}"
        ).encode()
    )
    assert all(letter.key != struct.pack(">q", 7) for letter in letters)
    assert b"1fd07bcc226c7826" in unknown.headers["error.detail"]


async def test_unmappable_payload_is_dead_lettered(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    s = fineract_settings
    events = sample_events()
    disbursal = renumbered(events[2], 50, client=77, loan=900)
    assert isinstance(disbursal.payload, dict)
    disbursal.payload["clientOfficeId"] = None
    await produce(kafka_bootstrap, s.fineract_topic, fineract_records([disbursal]))
    async with running_consumer(s):
        outputs = await wait_outputs(kafka_bootstrap, s, lambda o: len(dead(o)) >= 1)
    [letter] = dead(outputs)
    assert letter.headers["error.reason"] == b"unmappable"
    assert letter.headers["error.source"] == SOURCE.encode()
    assert b"clientOfficeId" in letter.headers["error.detail"]


async def test_redelivered_message_after_restart_is_published_once(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    s = fineract_settings
    await produce(kafka_bootstrap, s.fineract_topic, sample_records())
    async with running_consumer(s):
        await wait_outputs(kafka_bootstrap, s, lambda o: len(canonical(o)) >= 4)
    # Fineract's sender resends a whole batch (same idempotency keys) while we were down
    await produce(kafka_bootstrap, s.fineract_topic, sample_records())
    async with running_consumer(s) as consumer:
        await nothing_more(kafka_bootstrap, s)
        assert consumer.totals.published == 1  # the marker only
        assert consumer.totals.duplicates >= len(manifest())  # more if a rebalance re-reads
    outputs = await read_outputs(kafka_bootstrap, s)
    counts = Counter(o.id for o in canonical(outputs))
    assert len(counts) == 5 and set(counts.values()) == {1}  # the samples' 4 and the marker


async def test_outbox_committed_before_a_crash_is_published_once_on_restart(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    """Batch applied and committed to the DB, process gone before relaying: the next run
    publishes it, exactly once."""
    s = fineract_settings
    from services.common.bus import KafkaBus, Record
    from services.ingest.fineract.consumer import FineractConsumer
    from services.ingest.fineract.store import migrate_db, open_engine

    await migrate_db(s)
    bus = KafkaBus(kafka_bootstrap)
    engine = open_engine(s)
    try:
        first = FineractConsumer(s, bus, engine)
        records = [
            Record(s.fineract_topic, 0, offset, key, value)
            for offset, (key, value) in enumerate(sample_records())
        ]
        stats = await first.apply(records)  # committed to the DB, never relayed
        assert stats.published == 4
    finally:
        await engine.dispose()
        await bus.close()
    assert canonical(await read_outputs(kafka_bootstrap, s)) == []
    async with running_consumer(s):
        await wait_outputs(kafka_bootstrap, s, lambda o: len(canonical(o)) >= 4)
        outputs = await nothing_more(kafka_bootstrap, s)
    assert Counter(o.id for o in canonical(outputs)).most_common(1)[0][1] == 1
    assert len(canonical(outputs)) == 4


async def test_event_for_an_unknown_loan_waits_for_it(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    s = fineract_settings
    events = sample_events()
    repayment = renumbered(events[4], 20, client=31, loan=700)
    disbursal = renumbered(events[2], 30, client=31, loan=700)
    async with running_consumer(s) as consumer:
        await produce(kafka_bootstrap, s.fineract_topic, fineract_records([repayment]))
        await wait_outputs(kafka_bootstrap, s, lambda o: consumer.totals.parked >= 1, 30)
        assert canonical(await read_outputs(kafka_bootstrap, s)) == []
        await produce(kafka_bootstrap, s.fineract_topic, fineract_records([disbursal]))
        outputs = await wait_outputs(kafka_bootstrap, s, lambda o: len(canonical(o)) >= 2)
    assert [o.type for o in canonical(outputs)] == [
        "spm.loan.disbursed.v1",
        "spm.loan.repayment.v1",
    ]
    assert canonical(outputs)[1].data()["loan_id"] == "fineract:default:700"
    assert dead(outputs) == []


async def test_event_whose_loan_never_comes_is_dead_lettered_after_the_timeout(
    kafka_bootstrap: str, postgres_url: str, unique: str, fineract_settings: FineractSettings
) -> None:
    s = make_settings(kafka_bootstrap, postgres_url, unique, fineract_park_timeout_s=1.0)
    repayment = renumbered(sample_events()[4], 20, client=31, loan=701)
    await produce(kafka_bootstrap, s.fineract_topic, fineract_records([repayment]))
    async with running_consumer(s):
        outputs = await wait_outputs(kafka_bootstrap, s, lambda o: len(dead(o)) >= 1)
    [letter] = dead(outputs)
    assert letter.headers["error.reason"] == b"loan_unknown"
    assert letter.headers["error.source"] == SOURCE.encode()
    assert letter.headers["error.topic"] == s.fineract_topic.encode()
    assert canonical(outputs) == []


async def test_poison_payload_is_dead_lettered_and_the_consumer_goes_on(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    s = fineract_settings
    events = sample_events()
    disbursal = renumbered(events[2], 40, client=32, loan=800)
    bulk = renumbered(events[5], 41, client=32, loan=800)
    assert isinstance(bulk.payload, list)
    bulk.payload[0][2]["delinquentDate"] = "2026-13-45"  # a string Avro accepts, no date
    repayment = renumbered(events[4], 42, client=32, loan=800)
    await produce(kafka_bootstrap, s.fineract_topic, fineract_records([disbursal, bulk, repayment]))
    async with running_consumer(s):
        outputs = await wait_outputs(
            kafka_bootstrap, s, lambda o: len(dead(o)) >= 1 and len(canonical(o)) >= 2
        )
    [letter] = dead(outputs)
    assert letter.headers["error.reason"] == b"unmappable"
    assert letter.headers["error.item"] == b"1"
    assert b"ValueError" in letter.headers["error.detail"]
    assert sorted(o.type for o in canonical(outputs)) == [
        "spm.loan.disbursed.v1",
        "spm.loan.repayment.v1",
    ]


async def test_a_second_instance_waits_as_a_standby(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    s = fineract_settings
    events = sample_events()
    async with running_consumer(s) as active:
        await asyncio.wait_for(active.is_active.wait(), 30)  # the first one holds the lock
        async with running_consumer(s) as standby:
            await produce(
                kafka_bootstrap,
                s.fineract_topic,
                fineract_records([renumbered(events[0], 60, client=33, loan=0)]),
            )
            await wait_outputs(kafka_bootstrap, s, lambda o: len(canonical(o)) >= 1)
            assert active.totals.records == 1
            assert standby.totals.records == 0
            assert not standby.is_active.is_set()
        assert standby.totals.records == 0


async def test_fineract_1_12_messages_map_like_1_14_ones(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    s = fineract_settings
    events = [renumbered(e, 70 + i, client=34, loan=810) for i, e in enumerate(sample_events())]
    records = [(e.kafka_key(), e.value(release="1.12.1")) for e in events]
    assert records[2][1] != events[2].value()  # LoanAccountDataV1 has another layout in 1.12
    await produce(kafka_bootstrap, s.fineract_topic, records)
    async with running_consumer(s):
        outputs = await wait_outputs(kafka_bootstrap, s, lambda o: len(canonical(o)) >= 4)
    assert dead(outputs) == []
    assert sorted(o.type for o in canonical(outputs)) == [
        "spm.client.registered.v1",
        "spm.loan.delinquency.v1",
        "spm.loan.disbursed.v1",
        "spm.loan.repayment.v1",
    ]


class InjectedCrash(Exception):
    """Raised at the fault point: the batch's transaction aborts as if the process died."""


async def test_a_crash_between_effects_and_offsets_loses_and_doubles_nothing(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    """Deterministic: the first batch dies after its outbox rows and dedup claims were written
    and before its offsets; the next run publishes every event exactly once. Each message maps
    to one canonical event, so whichever batch dies, losing it would show."""
    from services.common.bus import KafkaBus
    from services.common.faults import injected
    from services.ingest.fineract.consumer import FineractConsumer
    from services.ingest.fineract.store import migrate_db, open_engine

    s = fineract_settings
    created = next(e for e in sample_events() if e.type == "ClientCreateBusinessEvent")
    events = [
        renumbered(created, 20_000 + i, client=200_000 + i, loan=600_000 + i) for i in range(20)
    ]
    expected = {e.envelope["idempotencyKey"] for e in events}
    await produce(kafka_bootstrap, s.fineract_topic, fineract_records(events))
    await migrate_db(s)
    bus = KafkaBus(kafka_bootstrap)
    engine = open_engine(s)
    crashes = 0

    async def crash() -> None:
        nonlocal crashes
        crashes += 1
        raise InjectedCrash

    try:
        with injected("fineract.between_effects_and_offsets", crash):
            run = asyncio.create_task(FineractConsumer(s, bus, engine).run(asyncio.Event()))
            with pytest.raises(InjectedCrash):
                await asyncio.wait_for(run, 60)
    finally:
        await engine.dispose()
        await bus.close()
    assert crashes == 1
    assert canonical(await read_outputs(kafka_bootstrap, s)) == []  # nothing of it survived

    async with running_consumer(s):
        await wait_outputs(kafka_bootstrap, s, lambda o: len(canonical(o)) >= len(expected))
        outputs = await nothing_more(kafka_bootstrap, s)
    counts = Counter(o.id for o in canonical(outputs))
    assert set(counts) == expected and set(counts.values()) == {1}, counts
    assert dead(outputs) == []
