"""The fast path (Validator.prepare) writes exactly what the strict codec writes."""

from __future__ import annotations

import json
from datetime import date

import pytest

from contracts.envelope import from_kafka, to_kafka
from contracts.examples import EXAMPLES
from services.ingest.pseudonym import Pseudonymiser
from services.ingest.validation import DateBounds, Invalid, Validator

VALIDATOR = Validator(
    Pseudonymiser("unit-test-pepper-0123456789abcdef"), "KES", DateBounds(date(1970, 1, 1), 1)
)
INPUTS = [body for e in EXAMPLES.values() if (body := e.input()) is not None]


@pytest.mark.parametrize("body", INPUTS, ids=lambda b: b["type"])
def test_prepare_equals_strict_codec(body: dict[str, object]) -> None:
    strict = to_kafka(VALIDATOR.canonical(body))
    fast = VALIDATOR.prepare(body).message
    assert fast.topic == strict.topic and fast.key == strict.key
    assert dict(fast.headers) == dict(strict.headers)
    assert json.loads(fast.value or b"") == json.loads(strict.value)
    decoded = from_kafka(fast.value, fast.headers)  # strict canonical validation
    assert decoded.type == body["type"]


def test_control_characters_and_naive_time_rejected() -> None:
    body = dict(INPUTS[0])
    body["id"] = "a\x00b"
    with pytest.raises(Invalid) as caught:
        VALIDATOR.prepare(body)
    assert [e.field for e in caught.value.errors] == ["id"]
    body = {**INPUTS[0], "time": "2025-01-01T10:00:00"}
    with pytest.raises(Invalid) as caught:
        VALIDATOR.prepare(body)
    assert [e.field for e in caught.value.errors] == ["time"]


DISBURSED = EXAMPLES["spm.loan.disbursed.v1"].input()


def _disbursed(source: str, loan_id: str) -> dict[str, object]:
    assert DISBURSED is not None
    return {**DISBURSED, "source": source, "data": {**DISBURSED["data"], "loan_id": loan_id}}


@pytest.mark.parametrize(
    "loan_id",
    ["Jane Wanjiru 0712345678", "default:2001", "2001\n", " 2001", "x" * 101, "", "-2001"],
)
def test_ids_that_travel_are_codes(loan_id: str) -> None:
    """A loan id travels on Kafka and in ce_subject: free text (a name, a phone) is refused."""
    with pytest.raises(Invalid) as caught:
        VALIDATOR.prepare(_disbursed("fineract", loan_id))
    assert [e.field for e in caught.value.errors] == ["data.loan_id"]


def test_source_scoping_cannot_collide() -> None:
    """Source ``fineract`` + id ``default:2001`` once equalled ``fineract:default`` + ``2001``;
    now an id cannot carry the separator, and the scoped id reads back as (source, id)."""
    headers = dict(VALIDATOR.prepare(_disbursed("fineract:default", "2001")).message.headers)
    assert headers["ce_subject"] == b"fineract:default:2001"  # the same as before the change
    with pytest.raises(Invalid):
        VALIDATOR.prepare(_disbursed("fineract", "default:2001"))
    with pytest.raises(Invalid):  # a pre-scoped id is refused too: no id carries the separator
        VALIDATOR.prepare(_disbursed("fineract:default", "fineract:default:2001"))
    for source, loan_id in [("sim:mfi", "L0000001"), ("crm", "CASE/2024-17.b_3")]:
        subject = dict(VALIDATOR.prepare(_disbursed(source, loan_id)).message.headers)["ce_subject"]
        assert subject.decode().rsplit(":", 1) == [source, loan_id]
