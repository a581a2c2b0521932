"""Decode input records: a fast path for well-formed records, ``from_kafka`` for the rest.

The fast path checks exactly what ``contracts.envelope.from_kafka`` checks (content type,
CloudEvents attributes, the payload model) but skips building and re-validating the envelope
model; whenever a check fails it defers to ``from_kafka``, so the verdict and the reason of a
bad record are always the contract's own.

The payload is validated straight from the record's bytes (``payload``), which is several times
cheaper than ``json.loads`` + ``model_validate`` and gives the same model — except for JSON
numbers with a fraction or an exponent, which pydantic's JSON mode rounds differently: records
with one take the contract's own path. The engine stores the accepted record's JSON as the fact
body and replays it through the same ``payload``, so the state rebuilt from the database is the
state the live records built.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from contracts.envelope import CanonicalEvent, from_kafka
from contracts.events import CanonicalData
from contracts.registry import SOURCE_EVENTS, event_type
from services.common.bus import Record

_MODELS: dict[str, type[CanonicalData]] = {e.type: e.model for e in SOURCE_EVENTS}
_TYPES: dict[bytes, str] = {t.encode(): t for t in _MODELS}
_SOURCE = re.compile(r"\S+")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_TIME = TypeAdapter(AwareDatetime)
_FRACTIONAL_NUMBER = re.compile(rb":\s*-?[0-9]+[.eE]")
_JSON = b"application/json"

# Valid header values seen lately (validation is a pure function of the text): most records
# share a handful of sources and their event times repeat, so the checks are mostly lookups.
_MEMO_SIZE = 4096
_good_sources: set[bytes] = set()
_good_times: set[bytes] = set()


class Decoded(NamedTuple):
    """What the engine needs of a valid canonical event; ``body`` is the payload's JSON.
    A named tuple, as the bus's Record: one is built per record."""

    id: str
    source: str
    type: str
    data: CanonicalData
    body: str

    @property
    def topic(self) -> str:
        return event_type(self.type).topic.name


def payload(model: type[CanonicalData], body: bytes) -> CanonicalData:
    """The payload model of a JSON body, as the contract's ``json.loads`` + ``model_validate``
    would build it; raises ``ValueError`` (``ValidationError``) when it is not valid."""
    if _FRACTIONAL_NUMBER.search(body) is None:
        return model.model_validate_json(body)
    return model.model_validate(json.loads(body))


def decode(record: Record) -> Decoded:
    """The canonical event of a record; raises ``ContractViolation`` when it is not one."""
    event = _fast(record)
    if event is not None:
        return event
    full: CanonicalEvent = from_kafka(record.value, record.headers)
    return Decoded(full.id, full.source, full.type, full.data, full.data.model_dump_json())


def _remember(memo: set[bytes], value: bytes) -> None:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo.add(value)


def _fast(record: Record) -> Decoded | None:  # noqa: C901, PLR0911, PLR0912 - one flat check list
    headers = dict(record.headers)  # the last of repeated headers wins, as in from_kafka
    raw_id = headers.get("ce_id")
    raw_source = headers.get("ce_source")
    raw_type = headers.get("ce_type")
    raw_time = headers.get("ce_time")
    content_type = headers.get("content-type")
    if content_type is not None and not content_type.startswith(_JSON):
        return None
    version = headers.get("ce_specversion")
    if version is not None and version != b"1.0":
        return None
    try:
        traceparent = headers.get("traceparent")
        if traceparent is not None and not _TRACEPARENT.fullmatch(traceparent.decode()):
            return None
        subject = headers.get("ce_subject")
        if subject is not None:
            subject.decode()
    except UnicodeDecodeError:
        return None
    value = record.value
    if value is None or raw_id is None or raw_source is None or raw_time is None:
        return None
    type_ = _TYPES.get(raw_type) if raw_type is not None else None
    if type_ is None:
        return None
    try:
        id_ = raw_id.decode()
        source = raw_source.decode()
        body = value.decode()
    except UnicodeDecodeError:
        return None
    if not id_ or len(id_) > 200:
        return None
    if raw_source not in _good_sources:
        if len(source) > 200 or not _SOURCE.fullmatch(source):
            return None
        _remember(_good_sources, raw_source)
    try:
        if raw_time not in _good_times:
            _TIME.validate_python(raw_time.decode())  # validated only: the engine uses dates
            _remember(_good_times, raw_time)
        data = payload(_MODELS[type_], value)
    except (ValueError, ValidationError):  # UnicodeDecodeError is a ValueError
        return None
    return Decoded(id_, source, type_, data, body)
