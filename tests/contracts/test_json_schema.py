"""The published JSON Schemas say what the code enforces, checked with an independent validator
(``jsonschema``, draft 2020-12): every example and a sample of records ingest publishes are valid;
money values ingest refuses are refused by the schemas too, and the other way round."""

from __future__ import annotations

import itertools
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from contracts.examples import EXAMPLES
from contracts.registry import EVENT_TYPES
from services.ingest.pseudonym import Pseudonymiser
from services.ingest.validation import DateBounds, Invalid, Validator
from spm.simulator import SimConfig
from spm.simulator.engine import simulate_days

SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"
EXAMPLES_DIR = SCHEMAS.parent / "examples"
VALIDATOR = Validator(
    Pseudonymiser("schema-test-pepper-0123456789abcdef"), "KES", DateBounds(date(1970, 1, 1), 1)
)
DISBURSED = "spm.loan.disbursed.v1"
MONEY_FIELDS = {  # every money field of contract v1 (the 20 of the two forms)
    "spm.loan.disbursed.v1": ("amount", "instalment_monthly", "household_income_monthly"),
    "spm.loan.repayment.v1": (
        "amount",
        "principal_paid",
        "interest_paid",
        "outstanding_principal_after",
    ),
    "spm.loan.delinquency.v1": ("arrears_amount", "outstanding_principal"),
    "spm.loan.written_off.v1": ("principal_written_off",),
}


def _validator(path: Path) -> Draft202012Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)  # the document itself is valid JSON Schema
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


CANONICAL = {t: _validator(SCHEMAS / f"{t}.json") for t in EVENT_TYPES}
INPUT = {
    t: _validator(SCHEMAS / "input" / f"{t}.json")
    for t, et in EVENT_TYPES.items()
    if et.input_model is not None
}


def errors(validator: Draft202012Validator, data: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)
    ]


def test_every_money_field_has_a_pattern() -> None:
    for type_, fields in MONEY_FIELDS.items():
        for schemas in (CANONICAL, INPUT):
            props = schemas[type_].schema["properties"]
            for field in fields:
                assert "pattern" in json.dumps(props[field]), (type_, field)
    assert sum(len(f) for f in MONEY_FIELDS.values()) * 2 == 20


@pytest.mark.parametrize("path", sorted(EXAMPLES_DIR.glob("*.json")), ids=lambda p: p.name)
def test_every_example_is_valid(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    schemas = INPUT if path.name.endswith(".input.json") else CANONICAL
    assert errors(schemas[event["type"]], event["data"]) == []


def test_input_examples_carry_no_body_traceparent() -> None:
    """ingest takes the trace context from the HTTP request, and drops body extensions."""
    for example in EXAMPLES.values():
        body = example.input()
        assert body is None or "traceparent" not in body


def published(body: dict[str, Any]) -> tuple[str, Any]:
    message = VALIDATOR.prepare(body).message
    return body["type"], json.loads(message.value or b"")


def test_what_ingest_publishes_is_valid() -> None:
    """Every example input and 20 days of a simulated institution, through ingest's validator."""
    sample = [b for b in (e.input() for e in EXAMPLES.values()) if b is not None]
    config = SimConfig(days=20, clients=150, start=date(2025, 11, 1))
    sample += list(itertools.chain.from_iterable(simulate_days(config)))
    types = set()
    for body in sample:
        type_, data = published(body)
        types.add(type_)
        assert errors(CANONICAL[type_], data) == [], (type_, data)
    assert {DISBURSED, "spm.loan.repayment.v1", "spm.client.registered.v1"} <= types
    assert len(sample) > 500


def disbursal(amount: Any) -> dict[str, Any]:
    body = EXAMPLES[DISBURSED].input()
    assert body is not None
    return {**body, "data": {**body["data"], "amount": amount}}


def ingest_accepts(amount: Any) -> bool:
    try:
        VALIDATOR.prepare(disbursal(amount))
    except Invalid as exc:
        assert [e.field for e in exc.errors] == ["data.amount"]
        return False
    return True


def schema_accepts(amount: Any) -> bool:
    return not errors(INPUT[DISBURSED], disbursal(amount)["data"])


REFUSED = [
    "abc",
    "NaN",
    "Infinity",
    "-5",
    "-0",
    "+5",
    "45,000.00",
    "1e5",
    "1E+5",
    " 5",
    "5 ",
    "5\n",
    "1_000",
    "5.",
    ".5",
    "5.12345",
    "\uff11\uff12",  # full-width digits
    "12345678901234567",
    "",
    -5,
]


@pytest.mark.parametrize("amount", REFUSED, ids=repr)
def test_values_ingest_refuses_are_refused_by_the_schema(amount: Any) -> None:
    assert not ingest_accepts(amount)
    assert not schema_accepts(amount)


@pytest.mark.parametrize(
    ("amount", "published_as"),
    [
        ("45000.00", "45000.00"),
        ("0", "0"),
        ("0.5000", "0.5000"),
        ("3633.33000000", "3633.3300"),  # trailing zeros past 4 places (Fineract's scale 8)
        ("0045", "45"),
        ("9999999999999999.9999", "9999999999999999.9999"),
        (45000, "45000"),
        (Decimal("1E+5"), "100000"),  # the JSON number 1e5: published in plain notation
        (Decimal("-0.0"), "0.0"),  # no negative zero
    ],
    ids=repr,
)
def test_values_ingest_accepts_are_accepted_and_published_plain(
    amount: Any, published_as: str
) -> None:
    assert ingest_accepts(amount)
    assert schema_accepts(amount if not isinstance(amount, Decimal) else float(amount))
    type_, data = published(disbursal(amount))
    assert data["amount"] == published_as
    assert errors(CANONICAL[type_], data) == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.eE+-, _\n", max_size=22))
def test_schema_and_ingest_agree_on_any_money_string(amount: str) -> None:
    assert schema_accepts(amount) == ingest_accepts(amount), repr(amount)
