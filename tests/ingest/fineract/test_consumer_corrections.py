"""Undo events through the running adapter on the real Kafka and PostgreSQL: each undo type gives
the contract v1.1 event; unmapped types are counted; parking does not break per-loan order."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from contracts.envelope import from_kafka
from services.ingest.fineract.config import FineractSettings
from tests.ingest.fineract.builders import (
    REPAYMENT_TYPE,
    WRITE_OFF_TYPE,
    loan_account,
    loan_event,
    transaction,
    transaction_event,
)
from tests.ingest.fineract.conftest import (
    Out,
    fineract_records,
    produce,
    read_outputs,
    running_consumer,
    wait_outputs,
)
from tests.ingest.fineract.helpers import FineractEvent

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SCOPE = "fineract:default:"
SCHEMAS = Path(__file__).resolve().parents[3] / "contracts" / "schemas"


def schema_errors(out: Out) -> list[str]:
    schema = json.loads((SCHEMAS / f"{out.type}.json").read_text(encoding="utf-8"))
    return [e.message for e in Draft202012Validator(schema).iter_errors(out.data())]


LOAN = 700
CLIENT = 31


def canonical(outputs: list[Out]) -> list[Out]:
    return sorted((o for o in outputs if "ce_id" in o.headers), key=lambda o: o.offset)


def dead(outputs: list[Out]) -> list[Out]:
    return [o for o in outputs if "error.reason" in o.headers]


def disbursal(n: int, amount: str, day: str) -> FineractEvent:
    account = loan_account(LOAN, CLIENT, amount=amount, disbursed_on=day)
    return loan_event(n, "LoanDisbursalBusinessEvent", account, business_date=day)


def undo(n: int, type_: str, day: str) -> FineractEvent:
    account = loan_account(LOAN, CLIENT, amount="0", disbursed_on=day, status=200)
    return loan_event(n, type_, account, business_date=day)


def write_off(
    n: int, txn_id: int, day: str, type_: str = "LoanWrittenOffPostBusinessEvent"
) -> FineractEvent:
    txn = transaction(
        LOAN, txn_id, type_=WRITE_OFF_TYPE, day=day, amount="15000", principal="15000"
    )
    return transaction_event(n, type_, txn, business_date=day)


def repayment(n: int, txn_id: int, day: str, principal: str) -> FineractEvent:
    txn = transaction(
        LOAN, txn_id, type_=REPAYMENT_TYPE, day=day, amount=principal, principal=principal
    )
    return transaction_event(
        n, "LoanTransactionMakeRepaymentPostBusinessEvent", txn, business_date=day
    )


@pytest.mark.parametrize(
    "undo_type", ["LoanUndoDisbursalBusinessEvent", "LoanUndoLastDisbursalBusinessEvent"]
)
async def test_undone_disbursal_is_reversed_and_the_redisbursal_has_a_new_id(
    kafka_bootstrap: str, fineract_settings: FineractSettings, undo_type: str
) -> None:
    s = fineract_settings
    events = [
        disbursal(10, "20000", "2026-03-02"),
        undo(11, undo_type, "2026-03-03"),
        disbursal(12, "18000", "2026-03-04"),
    ]
    await produce(kafka_bootstrap, s.fineract_topic, fineract_records(events))
    async with running_consumer(s):
        outputs = await wait_outputs(kafka_bootstrap, s, lambda o: len(canonical(o)) >= 3)
    assert dead(outputs) == []
    for out in canonical(outputs):  # what the adapter publishes is what the schemas say
        assert schema_errors(out) == []
    first, reversal, second = (
        from_kafka(o.value, list(o.headers.items())) for o in canonical(outputs)
    )
    assert [first.type, reversal.type, second.type] == [
        "spm.loan.disbursed.v1",
        "spm.loan.transaction_reversed.v1",
        "spm.loan.disbursed.v1",
    ]
    assert first.data.transaction_id == f"{SCOPE}disbursal-10"  # type: ignore[attr-defined]
    assert reversal.data.transaction_id == f"{SCOPE}disbursal-10"  # type: ignore[attr-defined]
    assert reversal.data.loan_id == f"{SCOPE}{LOAN}"  # type: ignore[attr-defined]
    assert reversal.data.client_pid == first.data.client_pid  # type: ignore[attr-defined]
    assert str(reversal.data.reversed_on) == "2026-03-03"  # type: ignore[attr-defined]
    assert second.data.transaction_id == f"{SCOPE}disbursal-12"  # type: ignore[attr-defined]
    assert (str(second.data.amount), str(second.data.disbursed_on)) == ("18000.00", "2026-03-04")  # type: ignore[attr-defined]


async def test_undone_write_off_is_reversed_and_written_off_status_is_no_closure(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    s = fineract_settings
    written_off = loan_account(LOAN, CLIENT, amount="20000", disbursed_on="2026-03-02", status=601)
    events = [
        disbursal(10, "20000", "2026-03-02"),
        write_off(11, 9001, "2026-08-01"),
        loan_event(12, "LoanStatusChangedBusinessEvent", written_off, business_date="2026-08-01"),
        write_off(13, 9001, "2026-08-03", "LoanUndoWrittenOffBusinessEvent"),
    ]
    await produce(kafka_bootstrap, s.fineract_topic, fineract_records(events))
    async with running_consumer(s) as consumer:
        outputs = await wait_outputs(
            kafka_bootstrap, s, lambda o: len(canonical(o)) >= 3 and consumer.totals.ignored >= 1
        )
        assert consumer.totals.ignored_types == {"LoanStatusChangedBusinessEvent": 1}
    assert dead(outputs) == []
    assert [schema_errors(o) for o in canonical(outputs)] == [[], [], []]
    types = [o.type for o in canonical(outputs)]
    assert types == [
        "spm.loan.disbursed.v1",
        "spm.loan.written_off.v1",
        "spm.loan.transaction_reversed.v1",
    ]  # no spm.loan.closed.v1: a closure cannot be undone
    written, reversal = canonical(outputs)[1].data(), canonical(outputs)[2].data()
    assert written["transaction_id"] == reversal["transaction_id"] == f"{SCOPE}9001"
    assert reversal["reversed_on"] == "2026-08-03"


async def test_unmapped_types_are_counted_per_type_and_logged_once(
    kafka_bootstrap: str, fineract_settings: FineractSettings, caplog: pytest.LogCaptureFixture
) -> None:
    s = fineract_settings
    charge_off = {"id": 27, "code": "loanTransactionType.chargeOff", "value": "Charge-off"}
    txn = transaction(LOAN, 9100, type_=charge_off, day="2026-06-01", amount="5", principal="5")
    approved = loan_account(LOAN, CLIENT, amount="0", disbursed_on="2026-03-01", status=200)
    events = [
        loan_event(9, "LoanApprovedBusinessEvent", approved, business_date="2026-03-01"),
        disbursal(10, "20000", "2026-03-02"),
        transaction_event(11, "LoanChargeOffPostBusinessEvent", txn, business_date="2026-06-01"),
        transaction_event(12, "LoanUndoChargeOffBusinessEvent", txn, business_date="2026-06-02"),
        transaction_event(13, "LoanChargeOffPostBusinessEvent", txn, business_date="2026-06-03"),
    ]
    caplog.set_level(logging.INFO, logger="services.ingest.fineract.ignored")
    await produce(kafka_bootstrap, s.fineract_topic, fineract_records(events))
    async with running_consumer(s) as consumer:
        await wait_outputs(kafka_bootstrap, s, lambda o: consumer.totals.records >= 5)
        assert consumer.ignored.totals == {
            "LoanApprovedBusinessEvent": 1,
            "LoanChargeOffPostBusinessEvent": 2,
            "LoanUndoChargeOffBusinessEvent": 1,
        }
    outputs = await read_outputs(kafka_bootstrap, s)
    assert [o.type for o in canonical(outputs)] == ["spm.loan.disbursed.v1"]
    assert dead(outputs) == []
    logged = [r.getMessage() for r in caplog.records if r.name.endswith("fineract.ignored")]
    assert sorted(line.split()[1] for line in logged) == [
        "LoanApprovedBusinessEvent",
        "LoanChargeOffPostBusinessEvent",  # once, though it came twice
        "LoanUndoChargeOffBusinessEvent",
    ]


async def test_earlier_disbursal_after_a_parked_repayment_is_applied_not_out_of_order(
    kafka_bootstrap: str, fineract_settings: FineractSettings
) -> None:
    """The repayment (envelope 20) arrives first and waits for its loan; the disbursal
    (envelope 10) that makes the loan known must not be taken as out of order."""
    s = fineract_settings
    async with running_consumer(s) as consumer:
        await produce(
            kafka_bootstrap,
            s.fineract_topic,
            fineract_records([repayment(20, 8001, "2026-04-02", "1000")]),
        )
        await wait_outputs(kafka_bootstrap, s, lambda o: consumer.totals.parked >= 1, 30)
        await produce(
            kafka_bootstrap,
            s.fineract_topic,
            fineract_records([disbursal(10, "20000", "2026-03-02")]),
        )
        outputs = await wait_outputs(
            kafka_bootstrap, s, lambda o: len(canonical(o)) >= 2 or len(dead(o)) >= 1
        )
        # the replayed repayment moved the loan's mark: an older message now is out of order
        await produce(
            kafka_bootstrap,
            s.fineract_topic,
            fineract_records([repayment(15, 8002, "2026-04-01", "5")]),
        )
        outputs = await wait_outputs(kafka_bootstrap, s, lambda o: len(dead(o)) >= 1)
    assert [o.type for o in canonical(outputs)] == [
        "spm.loan.disbursed.v1",
        "spm.loan.repayment.v1",
    ]
    [letter] = dead(outputs)
    assert letter.headers["error.reason"] == b"out_of_order"
    assert b"envelope id 15 <= 20" in letter.headers["error.detail"]
