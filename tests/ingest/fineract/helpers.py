"""Fixture samples and a Fineract-style encoder (Avro single-object encoding on every layer)."""

from __future__ import annotations

import copy
import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from services.ingest.fineract.avro import (
    BULK_PAYLOAD,
    MARKER,
    MESSAGE_V1,
    NAMESPACE,
    SchemaRegistry,
    WriterSchema,
    default_registry,
    encode_key,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fineract"
"""Committed samples (``tests/fixtures/fineract/generate.py`` wrote them), known fingerprints."""
SAMPLES = FIXTURES / "samples"
BULK_ITEM = f"{NAMESPACE}.BulkMessageItemV1"


def manifest() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((SAMPLES / "manifest.json").read_text())
    return entries


def sample_bytes(entry: dict[str, Any]) -> bytes:
    return (SAMPLES / str(entry["file"])).read_bytes()


def writer(
    name: str, release: str = "1.14.0", registry: SchemaRegistry | None = None
) -> WriterSchema:
    reg = registry or default_registry()
    for schema in reg.by_fingerprint.values():
        if schema.name == name and release in schema.releases:
            return schema
    raise KeyError((name, release))


def single_object(schema: WriterSchema, value: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema.parsed, value)
    return MARKER + schema.fingerprint + body.getvalue()


@dataclass
class FineractEvent:
    """One message as Fineract would publish it, built from plain values."""

    key: int
    envelope: dict[str, Any]
    type: str
    payload: dict[str, Any] | list[tuple[str, str, dict[str, Any]]]
    """The payload, or for a bulk message its items as (type, dataschema, payload)."""

    def value(self, release: str = "1.14.0") -> bytes:
        env = dict(self.envelope)
        if self.type == "BulkBusinessEvent":
            assert isinstance(self.payload, list)
            datas = [
                {
                    "id": i,
                    "type": t,
                    "category": "nocategory",
                    "dataschema": schema,
                    "data": single_object(writer(schema, release), payload),
                }
                for i, (t, schema, payload) in enumerate(self.payload, start=1)
            ]
            data = single_object(writer(BULK_PAYLOAD, release), {"datas": datas})
        else:
            assert isinstance(self.payload, dict)
            data = single_object(writer(env["dataschema"], release), self.payload)
        return single_object(writer(MESSAGE_V1, release), {**env, "data": data})

    def kafka_key(self) -> bytes:
        return encode_key(self.key)


def sample_events() -> list[FineractEvent]:
    """The six fixture samples, decoded into editable values."""
    from services.ingest.fineract.avro import decode_record

    out = []
    for entry in manifest():
        msg = decode_record(bytes.fromhex(entry["kafka_key_hex"]), sample_bytes(entry))
        env = dict(entry["envelope"])
        if msg.envelope.type == "BulkBusinessEvent":
            payload: Any = [(i.type, i.schema, i.payload) for i in msg.items]
        else:
            payload = msg.items[0].payload
        out.append(FineractEvent(entry["kafka_key_long"], env, msg.envelope.type, payload))
    return out


def renumbered(event: FineractEvent, n: int, *, client: int, loan: int) -> FineractEvent:
    """A copy with new envelope id / idempotency key and the given client and loan ids."""
    e = copy.deepcopy(event)
    e.envelope["id"] = n
    e.envelope["idempotencyKey"] = str(uuid.uuid4())
    is_client = e.envelope["category"] == "Client"
    e.key = client if is_client else loan
    payloads = [p for _, _, p in e.payload] if isinstance(e.payload, list) else [e.payload]
    for p in payloads:
        if is_client:
            p["id"] = client
        elif "loanId" in p:
            p["loanId"] = loan
            if "id" in p and p["id"] is not None:
                p["id"] = n * 10  # a transaction id
        else:  # LoanAccountDataV1
            p["id"] = loan
            p["clientId"] = client
    return e
