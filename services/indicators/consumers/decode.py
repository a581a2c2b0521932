"""Decode input records: a fast path for well-formed records, ``from_kafka`` for the rest.

The fast path checks exactly what ``contracts.envelope.from_kafka`` checks (content type,
CloudEvents attributes, the payload model) but skips building and re-validating the envelope
model; whenever a check fails it defers to ``from_kafka``, so the verdict and the reason of a
bad record are always the contract's own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from contracts.envelope import CanonicalEvent, from_kafka
from contracts.events import CanonicalData
from contracts.registry import SOURCE_EVENTS, event_type
from services.common.bus import Record

_MODELS = {e.type: e.model for e in SOURCE_EVENTS}
_SOURCE = re.compile(r"^\S+$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_TIME = TypeAdapter(AwareDatetime)


@dataclass(frozen=True, slots=True)
class Decoded:
    """What the engine needs of a valid canonical event."""

    id: str
    source: str
    type: str
    data: CanonicalData

    @property
    def topic(self) -> str:
        return event_type(self.type).topic.name


def decode(record: Record) -> Decoded:
    """The canonical event of a record; raises ``ContractViolation`` when it is not one."""
    event = _fast(record)
    if event is not None:
        return event
    full: CanonicalEvent = from_kafka(record.value, record.headers)
    return Decoded(full.id, full.source, full.type, full.data)


def _fast(record: Record) -> Decoded | None:
    try:
        h = {name: raw.decode() for name, raw in record.headers}
    except UnicodeDecodeError:
        return None
    if not h.get("content-type", "application/json").startswith("application/json"):
        return None
    if h.get("ce_specversion", "1.0") != "1.0" or record.value is None:
        return None
    id_, source, type_ = h.get("ce_id"), h.get("ce_source"), h.get("ce_type")
    traceparent = h.get("traceparent")
    if not id_ or len(id_) > 200 or not source or len(source) > 200 or type_ not in _MODELS:
        return None
    if not _SOURCE.match(source) or (
        traceparent is not None and not _TRACEPARENT.match(traceparent)
    ):
        return None
    try:
        data: Any = json.loads(record.value)
        payload = _MODELS[type_].model_validate(data)
        time = _TIME.validate_python(h.get("ce_time"))
    except (ValueError, ValidationError):
        return None
    del time  # validated only: the engine works on business dates
    return Decoded(id_, source, type_, payload)
