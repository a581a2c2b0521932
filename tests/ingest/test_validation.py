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
INPUTS = [e.input() for e in EXAMPLES.values() if e.input() is not None]


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
