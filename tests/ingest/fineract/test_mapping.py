"""Mapping of Fineract business events to contract v1 (input form), without infrastructure."""

from __future__ import annotations

import copy
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from services.ingest.fineract.avro import Envelope, FineractMessage, Item, decode_record
from services.ingest.fineract.errors import UnmappableEvent
from services.ingest.fineract.mapping import (
    LoanInfo,
    MapperConfig,
    map_item,
    parse_created_at,
)
from tests.ingest.fineract.helpers import manifest, sample_bytes

CONFIG = MapperConfig()
LOAN = LoanInfo(client_id=1042, branch_id="2", product_id="4", currency="KES", loan_cycle=1)


def samples() -> dict[str, FineractMessage]:
    return {
        e["envelope"]["type"]: decode_record(bytes.fromhex(e["kafka_key_hex"]), sample_bytes(e))
        for e in manifest()
    }


def with_payload(item: Item, type_: str, schema_suffix: str, payload: dict[str, Any]) -> Item:
    return Item(
        item.index, type_, f"org.apache.fineract.avro.loan.v1.{schema_suffix}", b"", payload
    )


def test_client_create_is_a_registration() -> None:
    msg = samples()["ClientCreateBusinessEvent"]
    result = map_item(msg.envelope, msg.items[0], {}, CONFIG)
    [event] = result.events
    assert event.type == "spm.client.registered.v1"
    assert event.source == "fineract:default"
    assert event.id == msg.envelope.idempotency_key
    assert event.once_key == "client:1042:registered"
    assert event.data == {
        "client_id": "1042",
        "branch_id": "2",
        "gender": "female",
        "birth_year": 1990,
        "registered_on": "2026-03-01",
    }
    assert event.time.isoformat() == "2026-03-02T06:15:30.412553+00:00"


def test_client_activate_is_the_same_registration_fact() -> None:
    msg = samples()["ClientActivateBusinessEvent"]
    [event] = map_item(msg.envelope, msg.items[0], {}, CONFIG).events
    assert event.type == "spm.client.registered.v1"
    assert event.once_key == "client:1042:registered"  # so only the first one is published


def test_disbursal_maps_and_fills_the_loan_table() -> None:
    msg = samples()["LoanDisbursalBusinessEvent"]
    result = map_item(msg.envelope, msg.items[0], {}, CONFIG)
    txn = f"disbursal-{msg.envelope.id}"
    assert result.loans == {5310: replace(LOAN, disbursals=(txn,))}
    [event] = result.events
    assert event.type == "spm.loan.disbursed.v1"
    assert event.data == {
        "loan_id": "5310",
        "client_id": "1042",
        "branch_id": "2",
        "product_id": "4",
        "officer_id": "7",
        "loan_cycle": 1,
        "amount": "20000.00",
        "currency": "KES",
        "term_months": 6,
        "disbursed_on": "2026-03-02",
        "transaction_id": txn,
    }


def test_disbursal_transaction_view_is_not_a_second_disbursal() -> None:
    msg = samples()["LoanDisbursalTransactionBusinessEvent"]
    result = map_item(msg.envelope, msg.items[0], {5310: LOAN}, CONFIG)
    assert result.events == [] and result.ignored


def test_repayment_needs_the_loan() -> None:
    msg = samples()["LoanTransactionMakeRepaymentPostBusinessEvent"]
    waiting = map_item(msg.envelope, msg.items[0], {}, CONFIG)
    assert waiting.events == [] and waiting.waiting_for_loan == 5310
    [event] = map_item(msg.envelope, msg.items[0], {5310: LOAN}, CONFIG).events
    assert event.type == "spm.loan.repayment.v1"
    assert event.data == {
        "loan_id": "5310",
        "client_id": "1042",
        "transaction_id": "88107",
        "value_date": "2026-04-02",
        "amount": "3633.33",
        "principal_paid": "3333.33",
        "interest_paid": "300.00",
        "outstanding_principal_after": "16666.67",
    }


def test_bulk_arrears_change_is_a_delinquency_event() -> None:
    msg = samples()["BulkBusinessEvent"]
    arrears, overdue = msg.items
    [event] = map_item(msg.envelope, arrears, {5310: LOAN}, CONFIG).events
    assert event.type == "spm.loan.delinquency.v1"
    assert event.id == f"{msg.envelope.idempotency_key}#1"
    assert event.data == {
        "loan_id": "5310",
        "client_id": "1042",
        "as_of": "2026-05-03",
        "days_past_due": 1,
        "bucket_min_days": 1,
        "bucket_max_days": 30,
        "arrears_amount": "3633.33",
    }
    assert map_item(msg.envelope, overdue, {5310: LOAN}, CONFIG).ignored


def test_back_to_current_is_zero_days() -> None:
    msg = samples()["BulkBusinessEvent"]
    payload = {**msg.items[0].payload, "delinquencyRange": None}
    item = with_payload(
        msg.items[0], msg.items[0].type, "LoanAccountDelinquencyRangeDataV1", payload
    )
    [event] = map_item(msg.envelope, item, {5310: LOAN}, CONFIG).events
    assert event.data["days_past_due"] == 0
    assert event.data["arrears_amount"] == "0.00"
    assert "bucket_min_days" not in event.data


def _repayment() -> tuple[Envelope, dict[str, Any]]:
    msg = samples()["LoanTransactionMakeRepaymentPostBusinessEvent"]
    return msg.envelope, copy.deepcopy(msg.items[0].payload)


def test_adjustment_reverses_and_replaces() -> None:
    env, old = _repayment()
    old["reversed"] = True
    old["reversedOnDate"] = "2026-04-05"
    new = {**copy.deepcopy(old), "id": 88200, "amount": Decimal("3000.00000000")}
    new["principalPortion"] = Decimal("2700.00000000")
    item = Item(
        0,
        "LoanAdjustTransactionBusinessEvent",
        "org.apache.fineract.avro.loan.v1.LoanTransactionAdjustmentDataV1",
        b"",
        {"transactionToAdjust": old, "newTransactionDetail": new, "customData": {}},
    )
    reversed_, replacement = map_item(env, item, {5310: LOAN}, CONFIG).events
    assert reversed_.type == "spm.loan.transaction_reversed.v1"
    assert reversed_.id == env.idempotency_key
    assert reversed_.data == {
        "loan_id": "5310",
        "client_id": "1042",
        "transaction_id": "88107",
        "reversed_on": "2026-04-05",
    }
    assert replacement.type == "spm.loan.repayment.v1"
    assert replacement.id == f"{env.idempotency_key}/1"
    assert replacement.data["transaction_id"] == "88200"
    assert replacement.data["amount"] == "3000.00"


def test_adjustment_without_replacement_only_reverses() -> None:
    env, old = _repayment()
    item = Item(
        0,
        "LoanAdjustTransactionBusinessEvent",
        "org.apache.fineract.avro.loan.v1.LoanTransactionAdjustmentDataV1",
        b"",
        {"transactionToAdjust": old, "newTransactionDetail": None},
    )
    [event] = map_item(env, item, {5310: LOAN}, CONFIG).events
    assert event.type == "spm.loan.transaction_reversed.v1"
    assert event.data["reversed_on"] == env.business_date


def test_write_off() -> None:
    env, txn = _repayment()
    txn.update(
        type={"id": 6, "code": "loanTransactionType.writeOff"},
        amount=Decimal("16966.67"),
        principalPortion=Decimal("16666.67"),
        date="2026-08-01",
    )
    item = with_payload(
        Item(0, "", "", b"", {}), "LoanWrittenOffPostBusinessEvent", "LoanTransactionDataV1", txn
    )
    [event] = map_item(env, item, {5310: LOAN}, CONFIG).events
    assert event.type == "spm.loan.written_off.v1"
    assert event.data == {
        "loan_id": "5310",
        "client_id": "1042",
        "principal_written_off": "16666.67",
        "written_off_on": "2026-08-01",
        "transaction_id": "88107",
    }


@pytest.mark.parametrize(
    ("flag", "code", "closure"),
    [
        ("closedObligationsMet", 600, "repaid"),
        ("closedRescheduled", 602, "rescheduled"),
    ],
)
def test_closure_from_status_change(flag: str, code: int, closure: str) -> None:
    msg = samples()["LoanDisbursalBusinessEvent"]
    payload = copy.deepcopy(msg.items[0].payload)
    payload["status"] = {**payload["status"], "id": code, "active": False, flag: True}
    payload["timeline"]["closedOnDate"] = "2026-09-02"
    item = with_payload(
        msg.items[0], "LoanStatusChangedBusinessEvent", "LoanAccountDataV1", payload
    )
    [event] = map_item(msg.envelope, item, {}, CONFIG).events
    assert event.type == "spm.loan.closed.v1"
    assert event.data["closure_type"] == closure
    assert event.data["closed_on"] == "2026-09-02"
    assert event.once_key == f"loan:5310:closed:{closure}"


def test_status_change_that_does_not_close_is_ignored() -> None:
    msg = samples()["LoanDisbursalBusinessEvent"]
    item = with_payload(
        msg.items[0], "LoanStatusChangedBusinessEvent", "LoanAccountDataV1", msg.items[0].payload
    )
    result = map_item(msg.envelope, item, {}, CONFIG)
    assert result.ignored and result.events == [] and 5310 in result.loans


def test_missing_required_field_is_unmappable() -> None:
    msg = samples()["LoanDisbursalBusinessEvent"]
    payload = {**msg.items[0].payload, "clientOfficeId": None}
    item = with_payload(msg.items[0], "LoanDisbursalBusinessEvent", "LoanAccountDataV1", payload)
    with pytest.raises(UnmappableEvent, match="clientOfficeId"):
        map_item(msg.envelope, item, {}, CONFIG)


def test_gender_mapping_is_configurable() -> None:
    msg = samples()["ClientCreateBusinessEvent"]
    payload = {**msg.items[0].payload, "gender": {"name": "Mwanamke"}}
    item = Item(0, "ClientCreateBusinessEvent", msg.items[0].schema, b"", payload)
    [event] = map_item(msg.envelope, item, {}, CONFIG).events
    assert event.data["gender"] == "unknown"
    swahili = MapperConfig(gender_map={"mwanamke": "female"})
    [event] = map_item(msg.envelope, item, {}, swahili).events
    assert event.data["gender"] == "female"


@pytest.mark.parametrize(
    "value",
    ["2026-03-02T06:15:30.412553", "2026-03-02T06:15:30.412553123", "2026-03-02T06:15:30"],
)
def test_created_at_with_0_to_9_fraction_digits(value: str) -> None:
    parsed = parse_created_at(value)
    assert parsed.tzinfo is not None
    assert parsed.replace(microsecond=0).isoformat() == "2026-03-02T06:15:30+00:00"
