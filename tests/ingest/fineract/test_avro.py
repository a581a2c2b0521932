"""Decoding: fingerprints per release, every fixture sample, corrupt and unknown bytes."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from services.ingest.fineract.avro import (
    MESSAGE_V1,
    NAMESPACE,
    decode_key,
    decode_record,
    default_registry,
)
from services.ingest.fineract.errors import FineractDecodeError
from tests.ingest.fineract.helpers import (
    FIXTURES,
    manifest,
    sample_bytes,
    sample_events,
    single_object,
    writer,
)

SUPPORTED = ("1.12.1", "1.13.0", "1.14.0")


def fingerprint_table() -> dict[str, dict[str, str]]:
    data = json.loads((FIXTURES / "fingerprints.json").read_text())
    return {v["fineract"]: v["fingerprints"] for v in data["versions"]}


@pytest.mark.parametrize("release", SUPPORTED)
def test_every_listed_schema_of_a_supported_release_is_known(release: str) -> None:
    registry = default_registry()
    for name, hex_fp in fingerprint_table()[release].items():
        schema = registry.by_fingerprint.get(bytes.fromhex(hex_fp))
        assert schema is not None, (release, name)
        assert schema.name == name


def test_release_specific_layouts_have_their_own_fingerprints() -> None:
    registry = default_registry()
    txn = f"{NAMESPACE}.loan.v1.LoanTransactionDataV1"
    assert {fp.hex() for fp in registry.fingerprints(txn)} == {
        "56977fe509c8b692",  # 1.12.1
        "438d18839d6f1df3",  # 1.13.0 / 1.14.0
    }
    assert {fp.hex() for fp in registry.fingerprints(MESSAGE_V1)} == {"c11abf2966626748"}


def test_old_envelope_is_an_unknown_fingerprint() -> None:
    old = fingerprint_table()["1.10.1"][MESSAGE_V1]
    assert bytes.fromhex(old) not in default_registry().by_fingerprint


def _matches(expected: Any, actual: Any, path: str = "") -> None:
    """Manifest values: decimals as strings; only the fields the manifest lists."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            _matches(value, actual.get(key), f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _matches(e, a, f"{path}[{i}]")
    elif isinstance(actual, Decimal):
        assert actual == Decimal(expected), path
        assert actual.as_tuple().exponent == -8, path  # scale 8 on the wire
    else:
        assert actual == expected, path


@pytest.mark.parametrize("entry", manifest(), ids=lambda e: e["file"])
def test_every_sample_decodes_to_its_manifest(entry: dict[str, Any]) -> None:
    value = sample_bytes(entry)
    assert value[2:10].hex() == entry["envelope_header_fingerprint"]
    msg = decode_record(bytes.fromhex(entry["kafka_key_hex"]), value)
    assert msg.aggregate_id == entry["kafka_key_long"]
    env = entry["envelope"]
    assert msg.envelope.id == env["id"]
    assert msg.envelope.type == env["type"]
    assert msg.envelope.category == env["category"]
    assert msg.envelope.created_at == env["createdAt"]
    assert msg.envelope.business_date == env["businessDate"]
    assert msg.envelope.tenant_id == env["tenantId"]
    assert msg.envelope.idempotency_key == env["idempotencyKey"]
    assert msg.envelope.dataschema == env["dataschema"]
    assert msg.envelope.release == "1.14.0"
    expected = entry["expected_payload"]
    if env["type"] == "BulkBusinessEvent":
        assert [(i.type, i.schema) for i in msg.items] == [
            (e["type"], e["dataschema"]) for e in expected
        ]
        assert [i.index for i in msg.items] == list(range(1, len(expected) + 1))
        for item, e in zip(msg.items, expected, strict=True):
            _matches(e["payload"], item.payload)
    else:
        assert len(msg.items) == 1
        _matches(expected, msg.items[0].payload)


def test_a_1_12_payload_is_read_with_the_1_12_schema() -> None:
    event = next(e for e in sample_events() if e.type.startswith("LoanTransactionMakeRepayment"))
    assert isinstance(event.payload, dict)
    msg = decode_record(event.kafka_key(), event.value(release="1.12.1"))
    payload = msg.items[0].payload
    assert "classification" not in payload  # the 1.12.1 layout has no such field
    assert payload["amount"] == event.payload["amount"] == Decimal("3633.33")
    assert payload["id"] == event.payload["id"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "corrupt"),
        (b"\x00\x01garbage-not-avro", "corrupt"),
        (b"\xc3\x01" + bytes.fromhex("1fd07bcc226c7826") + b"\x02", "unknown_fingerprint"),
        (b"\xc3\x01" + bytes.fromhex("c11abf2966626748") + b"\xff\xff\xff", "corrupt"),
    ],
)
def test_bad_bytes_say_why(value: bytes, reason: str) -> None:
    with pytest.raises(FineractDecodeError) as err:
        decode_record(b"\x00" * 8, value)
    assert err.value.reason == reason


def test_truncated_sample_is_corrupt() -> None:
    entry = manifest()[2]
    value = sample_bytes(entry)
    with pytest.raises(FineractDecodeError) as err:
        decode_record(bytes.fromhex(entry["kafka_key_hex"]), value[: len(value) // 2])
    assert err.value.reason == "corrupt"


def test_payload_schema_must_match_dataschema() -> None:
    event = sample_events()[0]
    client = writer(event.envelope["dataschema"])
    env = writer(MESSAGE_V1)
    bad = {**event.envelope, "dataschema": f"{NAMESPACE}.loan.v1.LoanAccountDataV1"}
    assert isinstance(event.payload, dict)
    value = single_object(env, {**bad, "data": single_object(client, event.payload)})
    with pytest.raises(FineractDecodeError) as err:
        decode_record(event.kafka_key(), value)
    assert err.value.reason == "schema_mismatch"


def test_key_is_a_big_endian_long() -> None:
    assert decode_key(bytes.fromhex("00000000000014be")) == 5310
    assert decode_key(bytes.fromhex("ffffffffffffffff")) == -1
    assert decode_key(None) is None
    with pytest.raises(FineractDecodeError):
        decode_key(b"\x01\x02")
