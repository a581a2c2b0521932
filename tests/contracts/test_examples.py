"""The committed example events: one per type and form, each valid under contract v1."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import parse_canonical
from contracts.events import PSEUDONYMISED_FIELDS
from contracts.registry import EVENT_TYPES, event_type

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "contracts" / "examples"
SOURCE_TYPES = sorted(t for t, et in EVENT_TYPES.items() if et.input_model is not None)
SCOPED_ID_FIELDS = ("loan_id", "transaction_id", "complaint_id")


def load(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((EXAMPLES_DIR / name).read_text(encoding="utf-8"))
    return obj


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_every_type_has_its_examples(type_: str) -> None:
    assert (EXAMPLES_DIR / f"{type_}.canonical.json").is_file()
    has_input = (EXAMPLES_DIR / f"{type_}.input.json").is_file()
    assert has_input == (EVENT_TYPES[type_].input_model is not None)


def test_every_example_file_is_of_a_known_type() -> None:
    for path in EXAMPLES_DIR.glob("*.json"):
        type_, form, _ = path.name.rsplit(".", 2)
        assert type_ in EVENT_TYPES, path.name
        assert form in ("input", "canonical"), path.name


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_canonical_example_is_a_valid_canonical_event(type_: str) -> None:
    event = parse_canonical(load(f"{type_}.canonical.json"))
    assert event.type == type_


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_input_example_is_valid_input(type_: str) -> None:
    obj = load(f"{type_}.input.json")
    assert obj["type"] == type_
    assert obj["specversion"] == "1.0"
    assert obj["id"]
    assert obj["source"]
    assert datetime.fromisoformat(obj["time"]).tzinfo is not None
    input_model = event_type(obj["type"]).input_model
    assert input_model is not None
    data = input_model.model_validate(obj["data"])
    # The example uses only fields of the input form: nothing of it is silently dropped.
    assert set(data.model_dump(exclude_none=True)) == set(obj["data"])
    assert not set(PSEUDONYMISED_FIELDS) & set(obj["data"]), "input carries raw ids, not pids"


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_input_and_canonical_examples_describe_the_same_fact(type_: str) -> None:
    raw, canonical = load(f"{type_}.input.json"), load(f"{type_}.canonical.json")
    assert (raw["id"], raw["source"], raw["time"]) == (
        canonical["id"],
        canonical["source"],
        canonical["time"],
    )
    raw_ids = set(PSEUDONYMISED_FIELDS.values())
    for name, value in raw["data"].items():
        if name in raw_ids:
            continue
        expected = f"{raw['source']}:{value}" if name in SCOPED_ID_FIELDS else value
        assert canonical["data"][name] == expected, name
