"""Decoding Fineract's external events: Avro single-object encoding on two (or three) layers.

Every Kafka value is a ``MessageV1`` written as ``C3 01`` + the 8-byte CRC-64-AVRO fingerprint of
the writer schema's Parsing Canonical Form + the Avro binary body; the envelope's ``data`` is the
payload in the same encoding, and a ``BulkBusinessEvent`` payload holds items that are too.
Fineract changes "V1" records between releases, so the writer schema is chosen by fingerprint,
never by name; the sets of every shipped release are merged into one registry.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from services.ingest.fineract.errors import FineractDecodeError

SCHEMAS_DIR = Path(__file__).parent / "schemas"
MARKER = b"\xc3\x01"
HEADER_LEN = 10
NAMESPACE = "org.apache.fineract.avro"
MESSAGE_V1 = f"{NAMESPACE}.MessageV1"
BULK_PAYLOAD = f"{NAMESPACE}.BulkMessagePayloadV1"
BULK_EVENT = "BulkBusinessEvent"
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


@dataclass(frozen=True, slots=True)
class WriterSchema:
    name: str
    fingerprint: bytes
    """The 8 header bytes exactly as they appear in a message (little-endian CRC-64-AVRO)."""
    releases: tuple[str, ...]
    """Every loaded Fineract release that ships this exact layout, newest first."""
    parsed: Any

    @property
    def release(self) -> str:
        return self.releases[0]


class SchemaRegistry:
    """Writer schemas of every known Fineract release, by header fingerprint."""

    def __init__(self, schemas: Iterable[WriterSchema]) -> None:
        self.by_fingerprint: dict[bytes, WriterSchema] = {}
        for schema in schemas:
            known = self.by_fingerprint.get(schema.fingerprint)
            if known is None:
                self.by_fingerprint[schema.fingerprint] = schema
                continue
            if known.name != schema.name:
                raise ValueError(f"fingerprint collision: {known.name} / {schema.name}")
            releases = tuple(
                sorted({*known.releases, *schema.releases}, key=_version, reverse=True)
            )
            self.by_fingerprint[schema.fingerprint] = replace(known, releases=releases)

    @classmethod
    def load(cls, root: Path = SCHEMAS_DIR) -> SchemaRegistry:
        """Load ``<root>/<release>/avro/**`` for every release, with ``<root>/bigdecimal.avsc``."""
        decimal = json.loads((root / "bigdecimal.avsc").read_text())
        schemas: list[WriterSchema] = []
        for release_dir in sorted(p for p in root.iterdir() if (p / "avro").is_dir()):
            schemas += load_release(release_dir / "avro", decimal, release_dir.name)
        return cls(schemas)

    def fingerprints(self, name: str) -> set[bytes]:
        return {s.fingerprint for s in self.by_fingerprint.values() if s.name == name}

    def read(self, buf: bytes, expect: str | None = None) -> tuple[WriterSchema, Any]:
        """Decode one single-object-encoded value; ``expect`` is the schema name it must have."""
        if len(buf) < HEADER_LEN or buf[:2] != MARKER:
            raise FineractDecodeError("corrupt", "missing Avro single-object marker C3 01")
        fp = bytes(buf[2:HEADER_LEN])
        schema = self.by_fingerprint.get(fp)
        if schema is None:
            raise FineractDecodeError(
                "unknown_fingerprint", f"unknown writer schema {fp.hex()} (expected {expect})"
            )
        if expect is not None and schema.name != expect:
            raise FineractDecodeError(
                "schema_mismatch", f"header says {schema.name}, dataschema says {expect}"
            )
        body = io.BytesIO(buf[HEADER_LEN:])
        try:
            value = fastavro.schemaless_reader(body, schema.parsed)
        except Exception as exc:  # noqa: BLE001 - any failure to read the body means corrupt bytes
            raise FineractDecodeError(
                "corrupt", f"{schema.name}: {type(exc).__name__}: {exc}"[:300]
            ) from exc
        if body.tell() != len(buf) - HEADER_LEN:
            raise FineractDecodeError("corrupt", f"{schema.name}: trailing bytes after the record")
        return schema, value


def load_release(avro_dir: Path, decimal: Mapping[str, Any], release: str) -> list[WriterSchema]:
    """Every schema of one release, standalone (named types inlined), with its fingerprint."""
    raw: dict[str, dict[str, Any]] = {}
    for path in sorted(avro_dir.rglob("*.avsc")):
        schema = json.loads(path.read_text())
        raw[f"{schema['namespace']}.{schema['name']}"] = schema  # full name, not file name
    out = []
    for name in raw:
        parsed = fastavro.parse_schema(_standalone(name, raw, decimal))
        fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
        out.append(WriterSchema(name, fp, (release,), parsed))
    return out


def _standalone(
    root: str, raw: Mapping[str, dict[str, Any]], decimal: Mapping[str, Any]
) -> dict[str, Any]:
    """One schema with every named type defined at first use and referenced by name after."""
    seen = {root}

    def walk(t: Any, ns: str) -> Any:
        if isinstance(t, str):
            if t == "bigdecimal":
                return dict(decimal)
            if t in _PRIMITIVES:
                return t
            full = t if "." in t else f"{ns}.{t}"
            if full in seen:
                return full
            seen.add(full)
            return record(raw[full])
        if isinstance(t, list):
            return [walk(x, ns) for x in t]
        if t["type"] == "array":
            return {**t, "items": walk(t["items"], ns)}
        if t["type"] == "map":
            return {**t, "values": walk(t["values"], ns)}
        return t

    def record(s: Mapping[str, Any]) -> dict[str, Any]:
        ns = s["namespace"]
        return {**s, "fields": [{**f, "type": walk(f["type"], ns)} for f in s["fields"]]}

    return record(raw[root])


def _version(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split(".") if part.isdigit())


@lru_cache(maxsize=1)
def default_registry() -> SchemaRegistry:
    return SchemaRegistry.load()


# --- one Kafka record ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """The ``MessageV1`` fields (without ``data``)."""

    id: int
    source: str
    type: str
    category: str
    created_at: str
    business_date: str
    tenant_id: str
    idempotency_key: str
    dataschema: str
    release: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "category": self.category,
            "created_at": self.created_at,
            "business_date": self.business_date,
            "tenant_id": self.tenant_id,
            "idempotency_key": self.idempotency_key,
            "dataschema": self.dataschema,
            "release": self.release,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Envelope:
        return cls(**obj)


@dataclass(frozen=True, slots=True)
class Item:
    """One business event: the envelope's payload, or one item of a bulk message."""

    index: int
    """0 for a plain message; the bulk item's ``id`` (1, 2, …) inside a bulk message."""
    type: str
    schema: str
    data: bytes
    """The payload still single-object encoded (what a parked event keeps)."""
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FineractMessage:
    aggregate_id: int | None
    envelope: Envelope
    items: tuple[Item, ...]


def decode_key(key: bytes | None) -> int | None:
    """Fineract's key: the aggregate root id as a Java ``Long`` (8 bytes big-endian)."""
    if key is None:
        return None
    if len(key) != 8:
        raise FineractDecodeError("corrupt", f"key is {len(key)} bytes, expected 8 (Java long)")
    value: int = struct.unpack(">q", key)[0]
    return value


def encode_key(aggregate_id: int) -> bytes:
    return struct.pack(">q", aggregate_id)


def decode_record(
    key: bytes | None, value: bytes | None, registry: SchemaRegistry | None = None
) -> FineractMessage:
    """One record of Fineract's topic -> envelope and business events (bulk unpacked)."""
    reg = registry or default_registry()
    if not value:
        raise FineractDecodeError("corrupt", "record has no value")
    aggregate_id = decode_key(key)
    env_schema, env = reg.read(value, MESSAGE_V1)
    envelope = Envelope(
        id=env["id"],
        source=env["source"],
        type=env["type"],
        category=env["category"],
        created_at=env["createdAt"],
        business_date=env["businessDate"],
        tenant_id=env["tenantId"],
        idempotency_key=env["idempotencyKey"],
        dataschema=env["dataschema"],
        release=env_schema.release,
    )
    _, data = reg.read(env["data"], _full_name(env["dataschema"]))
    if envelope.type != BULK_EVENT:
        items = (Item(0, envelope.type, envelope.dataschema, env["data"], data),)
        return FineractMessage(aggregate_id, envelope, items)
    bulk = []
    for item in data["datas"]:
        schema = _full_name(item["dataschema"])
        _, payload = reg.read(item["data"], schema)
        bulk.append(Item(item["id"], item["type"], schema, item["data"], payload))
    return FineractMessage(aggregate_id, envelope, tuple(bulk))


def _full_name(dataschema: str) -> str:
    return dataschema if dataschema.startswith(NAMESPACE) else f"{NAMESPACE}.{dataschema}"
