"""Payload models: strict canonical form, forgiving input form, money, time, error paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.envelope import ContractViolation, parse_canonical
from contracts.events import ComplaintOpened, LoanDisbursed
from contracts.examples import EXAMPLES
from contracts.registry import event_type

DISBURSED = "spm.loan.disbursed.v1"
OPENED = "spm.complaint.opened.v1"


def canonical(type_: str, **data: Any) -> dict[str, Any]:
    event = copy.deepcopy(EXAMPLES[type_].canonical())
    event["data"].update(data)
    return event


def input_data(type_: str, **data: Any) -> dict[str, Any]:
    raw = copy.deepcopy(EXAMPLES[type_].input_data)
    assert raw is not None
    return {**raw, **data}


def violation_fields(obj: dict[str, Any]) -> set[str]:
    with pytest.raises(ContractViolation) as raised:
        parse_canonical(obj)
    return {error.field for error in raised.value.errors}


def test_canonical_rejects_unknown_fields() -> None:
    data = canonical(DISBURSED, full_name="Wanjiru Kamau")["data"]
    with pytest.raises(ValidationError) as raised:
        LoanDisbursed.model_validate(data)
    assert raised.value.errors()[0]["type"] == "extra_forbidden"
    assert violation_fields(canonical(DISBURSED, full_name="Wanjiru Kamau")) == {"data.full_name"}


def test_canonical_rejects_unknown_envelope_attributes() -> None:
    event = {**canonical(DISBURSED), "phone": "+254712345678"}
    assert violation_fields(event) == {"phone"}


def test_input_drops_unknown_fields() -> None:
    personal = {
        "first_name": "Achieng",
        "last_name": "Otieno",
        "mobile_no": "+254712345678",
        "national_id": "29384756",
        "notes": "prefers M-Pesa",
    }
    model = event_type(DISBURSED).input_model
    assert model is not None
    parsed = model.model_validate(input_data(DISBURSED, **personal))
    dumped = parsed.model_dump()
    assert not set(personal) & set(dumped)
    assert parsed.model_extra is None
    assert dumped["client_id"] == "1042"


@pytest.mark.parametrize(
    "amount",
    ["-1.00", -1500.5, "NaN", float("nan"), "sNaN", "Infinity", "-Infinity", float("inf")],
)
def test_money_rejects_negative_and_non_finite(amount: object) -> None:
    assert violation_fields(canonical(DISBURSED, amount=amount)) == {"data.amount"}
    model = event_type(DISBURSED).input_model
    assert model is not None
    with pytest.raises(ValidationError):
        model.model_validate(input_data(DISBURSED, amount=amount))


def test_money_rejects_more_than_four_decimal_places() -> None:
    assert violation_fields(canonical(DISBURSED, amount="100.00001")) == {"data.amount"}


def test_money_keeps_its_exact_decimal_text() -> None:
    event = parse_canonical(canonical(DISBURSED, amount="45000.10"))
    assert isinstance(event.data, LoanDisbursed)
    assert str(event.data.amount) == "45000.10"


def test_payload_timestamp_without_offset_rejected() -> None:
    naive = "2025-05-06T10:12:30"
    assert violation_fields(canonical(OPENED, opened_at=naive)) == {"data.opened_at"}
    with pytest.raises(ValidationError):
        ComplaintOpened.model_validate(canonical(OPENED, opened_at=naive)["data"])
    model = event_type(OPENED).input_model
    assert model is not None
    with pytest.raises(ValidationError) as raised:
        model.model_validate(input_data(OPENED, opened_at=naive))
    assert raised.value.errors()[0]["loc"] == ("opened_at",)


def test_event_time_without_offset_rejected() -> None:
    event = {**canonical(OPENED), "time": "2025-05-06T10:12:30"}
    assert violation_fields(event) == {"time"}


def test_field_errors_carry_dotted_paths() -> None:
    event = {**canonical(DISBURSED, amount="abc", currency="kes"), "time": "yesterday"}
    with pytest.raises(ContractViolation) as raised:
        parse_canonical(event)
    fields = {error.field for error in raised.value.errors}
    assert fields == {"data.amount", "data.currency", "time"}
    assert "data.amount" in str(raised.value)


def test_missing_required_field_is_named() -> None:
    event = canonical(DISBURSED)
    del event["data"]["client_pid"]
    assert violation_fields(event) == {"data.client_pid"}


def test_pseudonym_must_be_hex_sha256() -> None:
    assert violation_fields(canonical(DISBURSED, client_pid="1042")) == {"data.client_pid"}


def test_unknown_type_is_a_violation_of_type() -> None:
    event = {**canonical(DISBURSED), "type": "spm.loan.teleported.v1"}
    assert violation_fields(event) == {"type"}
