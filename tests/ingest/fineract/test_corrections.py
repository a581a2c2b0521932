"""Undone disbursals and write-offs (contract v1.1), mapped without infrastructure, from messages
built and Avro-encoded here and decoded as the consumer does."""

from __future__ import annotations

from dataclasses import replace

from services.ingest.fineract.avro import decode_record
from services.ingest.fineract.mapping import LoanInfo, MapperConfig, MapResult, map_item
from tests.ingest.fineract.builders import (
    REPAYMENT_TYPE,
    WRITE_OFF_TYPE,
    loan_account,
    loan_event,
    transaction,
    transaction_event,
)
from tests.ingest.fineract.helpers import FineractEvent

CONFIG = MapperConfig()
LOAN = LoanInfo(client_id=31, branch_id="2", product_id="4", currency="KES", loan_cycle=1)
# The mapping keeps Fineract's own ids; ingest scopes them by the source fineract:<tenant>.
SCOPE = ""


def mapped(event: FineractEvent, loans: dict[int, LoanInfo]) -> MapResult:
    msg = decode_record(event.kafka_key(), event.value())
    [item] = msg.items
    return map_item(msg.envelope, item, loans, CONFIG)


def disbursal(n: int, amount: str = "20000", day: str = "2026-03-02") -> FineractEvent:
    account = loan_account(700, 31, amount=amount, disbursed_on=day)
    return loan_event(n, "LoanDisbursalBusinessEvent", account, business_date=day)


def undo(n: int, type_: str = "LoanUndoDisbursalBusinessEvent") -> FineractEvent:
    account = loan_account(700, 31, amount="0", disbursed_on="2026-03-02", status=200)
    return loan_event(n, type_, account, business_date="2026-03-04")


def test_each_disbursal_gets_a_stable_transaction_id_kept_with_the_loan() -> None:
    first = mapped(disbursal(10), {})
    [event] = first.events
    assert event.data["transaction_id"] == f"{SCOPE}disbursal-10"
    assert first.loans[700].disbursals == (f"{SCOPE}disbursal-10",)
    again = mapped(disbursal(10), {})  # a redelivery maps to the very same id
    assert again.events[0].data["transaction_id"] == f"{SCOPE}disbursal-10"
    tranche = mapped(disbursal(12), first.loans)
    assert tranche.loans[700].disbursals == (f"{SCOPE}disbursal-10", f"{SCOPE}disbursal-12")


def test_undo_disbursal_reverses_every_disbursal_in_force() -> None:
    known = {700: replace(LOAN, disbursals=(f"{SCOPE}disbursal-10", f"{SCOPE}disbursal-12"))}
    result = mapped(undo(20), known)
    assert [e.type for e in result.events] == ["spm.loan.transaction_reversed.v1"] * 2
    assert [e.data for e in result.events] == [
        {
            "loan_id": f"{SCOPE}700",
            "client_id": "31",
            "transaction_id": f"{SCOPE}disbursal-{n}",
            "reversed_on": "2026-03-04",
        }
        for n in (10, 12)
    ]
    assert len({e.id for e in result.events}) == 2
    assert result.loans[700].disbursals == ()


def test_undo_last_disbursal_reverses_the_latest_only() -> None:
    known = {700: replace(LOAN, disbursals=(f"{SCOPE}disbursal-10", f"{SCOPE}disbursal-12"))}
    result = mapped(undo(20, "LoanUndoLastDisbursalBusinessEvent"), known)
    [event] = result.events
    assert event.data["transaction_id"] == f"{SCOPE}disbursal-12"
    assert result.loans[700].disbursals == (f"{SCOPE}disbursal-10",)


def test_redisbursal_after_an_undo_gets_a_new_transaction_id() -> None:
    after_undo = mapped(undo(20), {700: replace(LOAN, disbursals=(f"{SCOPE}disbursal-10",))})
    redone = mapped(disbursal(21, amount="18000", day="2026-03-05"), after_undo.loans)
    [event] = redone.events
    assert event.type == "spm.loan.disbursed.v1"
    assert event.data["transaction_id"] == f"{SCOPE}disbursal-21"
    assert (event.data["amount"], event.data["disbursed_on"]) == ("18000.00", "2026-03-05")
    assert redone.loans[700].disbursals == (f"{SCOPE}disbursal-21",)


def test_undo_with_nothing_in_force_is_ignored_not_dropped() -> None:
    result = mapped(undo(20), {700: LOAN})  # disbursed before the adapter kept ids
    assert result.events == [] and result.ignored
    assert result.waiting_for_loan is None


def test_write_off_carries_its_transaction_id_and_its_undo_reverses_it() -> None:
    txn = transaction(
        700, 9001, type_=WRITE_OFF_TYPE, day="2026-08-01", amount="16966.67", principal="16666.67"
    )
    written = mapped(
        transaction_event(30, "LoanWrittenOffPostBusinessEvent", txn, business_date="2026-08-01"),
        {700: LOAN},
    )
    [event] = written.events
    assert event.data["transaction_id"] == f"{SCOPE}9001"
    undone = {**txn, "reversed": True, "reversedOnDate": "2026-08-03"}
    result = mapped(
        transaction_event(
            31, "LoanUndoWrittenOffBusinessEvent", undone, business_date="2026-08-03"
        ),
        {700: LOAN},
    )
    [reversal] = result.events
    assert reversal.type == "spm.loan.transaction_reversed.v1"
    assert reversal.data == {
        "loan_id": f"{SCOPE}700",
        "client_id": "31",
        "transaction_id": f"{SCOPE}9001",
        "reversed_on": "2026-08-03",
    }


def test_undo_write_off_of_an_unknown_loan_waits_for_it() -> None:
    txn = transaction(
        701, 9002, type_=WRITE_OFF_TYPE, day="2026-08-01", amount="10", principal="10"
    )
    event = transaction_event(
        31, "LoanUndoWrittenOffBusinessEvent", txn, business_date="2026-08-03"
    )
    result = mapped(event, {})
    assert result.events == [] and result.waiting_for_loan == 701


def test_written_off_status_is_not_a_closure() -> None:
    account = loan_account(700, 31, amount="20000", disbursed_on="2026-03-02", status=601)
    event = loan_event(40, "LoanStatusChangedBusinessEvent", account, business_date="2026-08-01")
    result = mapped(event, {700: LOAN})
    assert result.events == [] and result.ignored


def test_charge_off_and_its_undo_stay_unmapped() -> None:
    charge_off = {"id": 27, "code": "loanTransactionType.chargeOff", "value": "Charge-off"}
    txn = transaction(700, 9003, type_=charge_off, day="2026-08-01", amount="5", principal="5")
    for type_ in ("LoanChargeOffPostBusinessEvent", "LoanUndoChargeOffBusinessEvent"):
        result = mapped(transaction_event(50, type_, txn, business_date="2026-08-01"), {700: LOAN})
        assert result.events == [] and result.ignored


def test_repayment_is_unchanged() -> None:
    txn = transaction(
        700, 9004, type_=REPAYMENT_TYPE, day="2026-04-02", amount="3633.33", principal="3333.33"
    )
    event = transaction_event(
        60, "LoanTransactionMakeRepaymentPostBusinessEvent", txn, business_date="2026-04-02"
    )
    [repayment] = mapped(event, {700: LOAN}).events
    assert repayment.data["transaction_id"] == f"{SCOPE}9004"
