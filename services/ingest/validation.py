"""Input CloudEvents -> canonical events: validation, pseudonymisation, scoping.

The one place that decides what of a source's event may travel on: the envelope (CloudEvents
1.0, a known source event type, ``time`` with a UTC offset), the payload (the type's input model,
unknown fields dropped), the institution's currency, dates within bounds. Raw client/officer ids
become keyed pseudonyms; loan/transaction/complaint ids get the source's scope. The input
``subject`` and any extension attribute are dropped (free text may hide there); the canonical
subject is derived (the loan id for loan events).

Errors never quote the offending value: it may be personal data.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal, NoReturn, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_json

from contracts.envelope import CanonicalEvent, EventId, FieldError, Source, field_errors
from contracts.events import InputData
from contracts.registry import EVENT_TYPES, EventType
from services.common import errors
from services.common.bus import Message
from services.ingest.pseudonym import (
    MAX_SCOPED_LENGTH,
    PSEUDONYMISED,
    SCOPED_FIELDS,
    Pseudonymiser,
    scoped,
)

# C0/C1 control characters (NUL above all) break databases and logs downstream.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_REASON = "must not contain control characters"

# Source fields that give away an exact birth date; ingest keeps only the year.
BIRTH_DATE_FIELDS = ("birth_date", "date_of_birth", "dob", "birthdate")


class InputEnvelope(BaseModel):
    """The structured-mode CloudEvent a source sends; extension attributes are dropped."""

    model_config = ConfigDict(extra="ignore")

    specversion: Literal["1.0"]
    id: EventId
    source: Source
    type: str
    time: AwareDatetime
    datacontenttype: (
        Annotated[str, Field(pattern=r"^application/(cloudevents\+)?json( *;[ -~]*)?$")] | None
    ) = None
    data: Any


@dataclass(frozen=True, slots=True)
class _TypeFacts:
    """What the hot path needs of an event type, worked out once (model introspection is slow)."""

    spec: EventType
    envelope: type[InputEnvelope]  # the input envelope whose ``data`` is the type's input model
    canonical_fields: tuple[str, ...]  # the canonical model's fields, in order
    has_currency: bool
    date_fields: tuple[str, ...]  # input fields holding a date
    pseudonymised: tuple[tuple[str, str, str], ...]  # (input field, canonical field, kind)
    scoped: tuple[str, ...]  # identifiers that get the source's scope
    type_header: bytes


@cache
def _facts(type_: str) -> _TypeFacts:
    spec = EVENT_TYPES[type_]
    input_model = spec.input_model
    assert input_model is not None  # noqa: S101 - only source event types get here
    envelope: type[InputEnvelope] = create_model(
        f"{input_model.__name__}Envelope",
        __base__=InputEnvelope,
        data=(input_model, ...),
    )
    fields = input_model.model_fields
    return _TypeFacts(
        spec=spec,
        envelope=envelope,
        canonical_fields=tuple(spec.model.model_fields),
        has_currency="currency" in fields,
        date_fields=tuple(
            name
            for name, info in fields.items()
            if any(
                isinstance(t, type) and issubclass(t, date)
                for t in (info.annotation, *get_args(info.annotation))
            )
        ),
        pseudonymised=tuple(
            (input_name, canonical_name, kind)
            for canonical_name, (input_name, kind) in PSEUDONYMISED.items()
            if input_name in fields
        ),
        scoped=tuple(name for name in SCOPED_FIELDS if name in fields),
        type_header=type_.encode(),
    )


class DateBounds:
    """Dates must lie between ``earliest`` and today (UTC) plus ``future_days``."""

    def __init__(self, earliest: date, future_days: int) -> None:
        self.earliest = earliest
        self.future_days = future_days
        self._latest = earliest
        self._refresh_at = 0.0

    def latest(self) -> date:
        now = time.monotonic()
        if now >= self._refresh_at:  # recomputed once a minute, not per field
            self._latest = datetime.now(UTC).date() + timedelta(days=self.future_days)
            self._refresh_at = now + 60
        return self._latest

    def holds(self, value: date) -> bool:
        return self.earliest <= _day(value) <= self.latest()

    def check(self, value: date, field: str) -> FieldError | None:
        day = _day(value)
        if day < self.earliest:
            return FieldError(field, f"must not be before {self.earliest.isoformat()}")
        latest = self.latest()
        if day > latest:
            return FieldError(field, f"must not be after {latest.isoformat()} (in the future)")
        return None


def _day(value: date) -> date:
    """The UTC day of a timestamp, or the date itself."""
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


DedupKey = tuple[str, str]


def content_hash(type_: bytes, value: bytes) -> bytes:
    """What an event says, hashed: its type and its canonical data (pseudonymised, fields in the
    contract's order, pydantic's JSON), the bytes ingest publishes. The envelope's ``time`` is
    left out: a source re-sending the same facts with a new timestamp is repeating itself."""
    return hashlib.blake2b(type_ + b"\n" + value, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A validated, pseudonymised event: the Kafka record ingest publishes."""

    id: str
    source: str
    type: str
    message: Message
    content_hash: bytes = b""
    """:func:`content_hash` of the event: an id re-sent with another one is a conflict."""

    @property
    def key(self) -> DedupKey:
        """What deduplicates it: the sender's (source, id)."""
        return (self.source, self.id)


class Invalid(errors.Invalid):
    """An input event that cannot be accepted (the common 422), with its id when readable:
    a batch reports it among the outcomes instead of refusing the request."""

    def __init__(self, errors: list[FieldError], event_id: str | None = None) -> None:
        super().__init__(errors)
        self.errors: Sequence[FieldError] = errors
        self.event_id = event_id


class Validator:
    """Validates input events and turns them into canonical ones."""

    def __init__(self, pseudonymiser: Pseudonymiser, currency: str, bounds: DateBounds) -> None:
        self._pseudonymiser = pseudonymiser
        self._currency = currency
        self._bounds = bounds

    def canonical(self, obj: Any) -> CanonicalEvent:
        """The canonical event for one structured input event; raises :class:`Invalid`.

        Fully validated against the canonical model (for adapters that want the object).
        """
        envelope, facts = self._check(obj)
        dumped = envelope.data.model_dump(exclude_none=True)
        data = self._canonical_data(envelope, facts, dumped, obj["data"])
        try:
            return CanonicalEvent(
                id=envelope.id,
                source=envelope.source,
                type=envelope.type,
                time=envelope.time,
                subject=data.get("loan_id"),
                data=facts.spec.model.model_validate(data),
            )
        except ValidationError as exc:
            raise Invalid(field_errors(exc, "data"), envelope.id) from None

    def prepare(self, obj: Any) -> Outgoing:
        """The Kafka record of one structured input event (the HTTP fast path).

        The same bytes and headers as ``to_kafka(self.canonical(obj))`` (a test holds them
        equal) without building and re-validating the canonical model: every value was
        validated by the input twin of that model (same field types), pseudonyms are HMAC hex
        and scoped ids are length-checked.
        """
        envelope, facts = self._check(obj)
        dumped = envelope.data.model_dump(mode="json", exclude_none=True)
        data = self._canonical_data(envelope, facts, dumped, obj["data"])
        key = "|".join([data[name] for name in facts.spec.key_fields]).encode()
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", envelope.id.encode()),
            ("ce_source", envelope.source.encode()),
            ("ce_type", facts.type_header),
            ("ce_time", to_json(envelope.time)[1:-1]),  # pydantic's rendering, without quotes
        ]
        if "loan_id" in data:
            headers.append(("ce_subject", data["loan_id"].encode()))
        headers += [("ce_partitionkey", key), ("content-type", b"application/json")]
        # pydantic's serializer, fields in the canonical order: the bytes model_dump_json gives
        value = to_json({name: data.get(name) for name in facts.canonical_fields})
        message = Message(facts.spec.topic.name, value, key, tuple(headers))
        digest = content_hash(facts.type_header, value)
        return Outgoing(envelope.id, envelope.source, envelope.type, message, digest)

    def _check(self, obj: Any) -> tuple[InputEnvelope, _TypeFacts]:
        """Validate envelope and payload in one pass (one model per event type)."""
        if not isinstance(obj, Mapping):
            raise Invalid([FieldError("(event)", "must be a JSON object")])
        type_ = obj.get("type")
        spec = EVENT_TYPES.get(type_) if isinstance(type_, str) else None
        if spec is None or spec.input_model is None:
            self._refuse_type(obj, type_)
        facts = _facts(type_)  # a source event type, checked above
        try:
            envelope = facts.envelope.model_validate(obj)
        except ValidationError as exc:
            errors = field_errors(exc)
            raw_data = obj.get("data")
            if isinstance(raw_data, Mapping) and not any(
                e.field == "data.currency" for e in errors
            ):
                errors += self._currency_errors(raw_data.get("currency"))
            raise Invalid(errors, _event_id(obj)) from None
        if (
            _CONTROL.search(envelope.id)
            or _CONTROL.search(envelope.source)
            or not self._bounds.holds(envelope.time)
            or not self._payload_is_plain(envelope.data, facts)
        ):
            raise Invalid(self._errors(envelope, facts), envelope.id)
        return envelope, facts

    def _refuse_type(self, obj: Mapping[str, Any], type_: Any) -> NoReturn:
        """Raise the errors of an event whose type is missing, unknown or not a source's."""
        event_id = _event_id(obj)
        try:
            InputEnvelope.model_validate(obj)
        except ValidationError as exc:
            unknown = isinstance(type_, str) and type_ not in EVENT_TYPES
            type_errors = [FieldError("type", "unknown event type")] if unknown else []
            raise Invalid(field_errors(exc) + type_errors, event_id) from None
        if type_ not in EVENT_TYPES:
            raise Invalid([FieldError("type", "unknown event type")], event_id)
        raise Invalid([FieldError("type", "not an event sources may send")], event_id)

    def _currency_errors(self, currency: Any) -> list[FieldError]:
        if currency is None or currency == self._currency:
            return []
        return [FieldError("data.currency", f"must be the institution's currency {self._currency}")]

    def _payload_is_plain(self, payload: InputData, facts: _TypeFacts) -> bool:
        """No control characters, dates within bounds, the institution's currency: the common
        case, decided without an error list."""
        values = payload.__dict__
        if facts.has_currency and values["currency"] not in (None, self._currency):
            return False
        if _CONTROL.search("\x20".join([v for v in values.values() if isinstance(v, str)])):
            return False
        earliest, latest = self._bounds.earliest, self._bounds.latest()
        for name in facts.date_fields:
            day = values[name]
            if day is not None and not earliest <= _day(day) <= latest:
                return False
        return True

    def _errors(self, envelope: InputEnvelope, facts: _TypeFacts) -> list[FieldError]:
        """Every envelope and payload field at fault (the slow path, for a refused event)."""
        errors = [
            FieldError(name, CONTROL_REASON)
            for name in ("id", "source")
            if _CONTROL.search(getattr(envelope, name))
        ]
        if bound_error := self._bounds.check(envelope.time, "time"):
            errors.append(bound_error)
        payload = envelope.data
        if facts.has_currency:
            errors += self._currency_errors(payload.currency)
        for name, value in payload.__dict__.items():
            if isinstance(value, str):
                if _CONTROL.search(value):
                    errors.append(FieldError(f"data.{name}", CONTROL_REASON))
            elif isinstance(value, date) and (error := self._bounds.check(value, f"data.{name}")):
                errors.append(error)
        return errors

    def _canonical_data(
        self,
        envelope: InputEnvelope,
        facts: _TypeFacts,
        data: dict[str, Any],
        raw_data: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Pseudonymise and scope a dumped input payload (python or JSON mode)."""
        source = envelope.source
        pseudonym = self._pseudonymiser.pseudonym
        for input_name, canonical_name, kind in facts.pseudonymised:
            raw = data.pop(input_name, None)
            if raw is not None:
                data[canonical_name] = pseudonym(source, kind, raw)
        for name in facts.scoped:
            if name in data:
                data[name] = scoped(source, data[name])
                if len(data[name]) > MAX_SCOPED_LENGTH:
                    raise Invalid(
                        [FieldError(f"data.{name}", "too long once scoped by the source")],
                        envelope.id,
                    )
        if facts.spec.type == "spm.client.registered.v1" and "birth_year" not in data:
            year = _birth_year(raw_data)
            if year is not None:
                data["birth_year"] = year
        return data


def _event_id(obj: Mapping[str, Any]) -> str | None:
    """The event's id for the error report, when it has a usable one."""
    raw_id = obj.get("id")
    return raw_id if isinstance(raw_id, str) else None


def _birth_year(raw: Mapping[str, Any]) -> int | None:
    """The year of an exact birth date a source sent (the date itself is dropped)."""
    for name in BIRTH_DATE_FIELDS:
        value = raw.get(name)
        if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit():
            year = int(value[:4])
            if 1900 <= year <= 2100:
                return year
    return None
