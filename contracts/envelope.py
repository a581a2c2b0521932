"""CloudEvents 1.0 envelope of canonical events and its two encodings.

On Kafka events travel in *binary* mode: the record value is the JSON ``data``; the attributes
ride in ``ce_*`` headers beside ``content-type`` and W3C ``traceparent``. Over HTTP and in files
they use the *structured* JSON form. Both codecs live here so every service reads and writes
exactly the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    SerializeAsAny,
    StringConstraints,
    ValidationError,
    model_validator,
)

from contracts.events import CanonicalData
from contracts.jsontypes import JsonObject
from contracts.registry import UnknownEventType, event_type

SPECVERSION: Literal["1.0"] = "1.0"
JSON_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"

EventId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# pydantic checks ``pattern`` with the Rust regex engine, where ``$`` is the end of the string
# (Python's ``re`` would also match before a final newline); a property test holds every
# pattern-validated field to that.
Source = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f\x7f-\x9f]+$"),
]
"""Who sent the event: no spaces, no control characters."""
TraceParent = Annotated[
    str, StringConstraints(pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
]

# CloudEvents attribute -> Kafka header, in the order they are written.
_ATTRIBUTE_HEADERS = {
    "specversion": "ce_specversion",
    "id": "ce_id",
    "source": "ce_source",
    "type": "ce_type",
    "time": "ce_time",
    "subject": "ce_subject",
    "partitionkey": "ce_partitionkey",
}


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str


class ContractViolation(ValueError):
    """An event does not satisfy contract v1; ``errors`` name each field and why."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = list(errors)


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Flatten pydantic errors into dotted field paths (``data.amount``)."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        parts = [prefix] if prefix else []
        parts += [str(part) for part in err["loc"]]
        out.append(FieldError(".".join(parts) or prefix or "(root)", err["msg"]))
    return out


class CanonicalEvent(BaseModel):
    """A canonical event: the CloudEvents envelope around a validated v1 payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = SPECVERSION
    id: EventId
    source: Source
    type: str
    time: AwareDatetime
    subject: str | None = None
    traceparent: TraceParent | None = None
    data: SerializeAsAny[CanonicalData]

    @model_validator(mode="before")
    @classmethod
    def _typed_data(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and isinstance(value.get("data"), Mapping):
            model = event_type(str(value.get("type"))).model
            value = {**value, "data": model.model_validate(value["data"])}
        return value

    @model_validator(mode="after")
    def _data_matches_type(self) -> CanonicalEvent:
        expected = event_type(self.type).model
        if type(self.data) is not expected:
            raise ValueError(f"data is a {type(self.data).__name__}, {self.type} needs {expected}")
        return self

    @property
    def partitionkey(self) -> str:
        return event_type(self.type).key_of(self.data)

    @property
    def topic(self) -> str:
        return event_type(self.type).topic.name


def parse_canonical(obj: Mapping[str, Any]) -> CanonicalEvent:
    """Validate a structured-JSON canonical event, with field paths in the errors."""
    envelope = {k: v for k, v in obj.items() if k not in ("data", "datacontenttype")}
    data = obj.get("data")
    errors: list[FieldError] = []
    try:
        model = event_type(str(obj.get("type"))).model
    except UnknownEventType as exc:
        raise ContractViolation([FieldError("type", str(exc))]) from None
    try:
        payload = model.model_validate(data)
    except ValidationError as exc:
        errors += field_errors(exc, "data")
    try:
        if not errors:
            return CanonicalEvent.model_validate({**envelope, "data": payload})
        CanonicalEvent.model_validate({**envelope, "data": None})
    except ValidationError as exc:
        errors += [e for e in field_errors(exc) if e.field != "data"]
    raise ContractViolation(errors)


# --- structured JSON ---------------------------------------------------------------------------


def to_structured(event: CanonicalEvent) -> JsonObject:
    out = event.model_dump(mode="json", exclude_none=True)
    out["datacontenttype"] = JSON_CONTENT_TYPE
    return out


def from_structured(obj: Mapping[str, Any]) -> CanonicalEvent:
    return parse_canonical(obj)


# --- Kafka binary mode ---------------------------------------------------------------------------

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


def to_kafka(event: CanonicalEvent) -> KafkaRecord:
    attributes = event.model_dump(mode="json", exclude={"data", "traceparent"}, exclude_none=True)
    attributes["partitionkey"] = event.partitionkey
    headers: Headers = [
        (header, str(attributes[attr]).encode())
        for attr, header in _ATTRIBUTE_HEADERS.items()
        if attr in attributes
    ]
    headers.append(("content-type", JSON_CONTENT_TYPE.encode()))
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    value = event.data.model_dump_json().encode()
    return KafkaRecord(event.topic, event.partitionkey.encode(), value, headers)


def from_kafka(value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> CanonicalEvent:
    """Decode a binary-mode record; raises ContractViolation when it is not a valid event."""
    by_name = dict(headers)
    attributes: JsonObject = {}
    for attr, header in _ATTRIBUTE_HEADERS.items():
        if header in by_name and attr != "partitionkey":
            attributes[attr] = _header_text(by_name[header], header)
    if "traceparent" in by_name:
        attributes["traceparent"] = _header_text(by_name["traceparent"], "traceparent")
    content_type = by_name.get("content-type", JSON_CONTENT_TYPE.encode()).decode("latin-1")
    if not content_type.startswith(JSON_CONTENT_TYPE):
        raise ContractViolation([FieldError("content-type", f"unsupported: {content_type}")])
    if value is None:
        raise ContractViolation([FieldError("data", "record has no value")])
    try:
        attributes["data"] = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractViolation([FieldError("data", f"not JSON: {exc}")]) from None
    return parse_canonical(attributes)


def _header_text(raw: bytes, header: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ContractViolation([FieldError(header, "header is not UTF-8")]) from None
