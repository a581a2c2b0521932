"""Record -> input CloudEvent by a declarative field mapping (CSV imports, CRM webhooks).

A mapping is a small YAML document::

    type: spm.loan.disbursed.v1
    source: core:legacy            # CloudEvents source of every event it makes
    id: "{LoanNo}:disbursed"       # id template over the record's columns (optional)
    time: {column: DisbursedOn, date_format: "%d/%m/%Y"}
    when: IsClosed                 # only records where this column is true (optional)
    fields:
      loan_id: LoanNo              # a column name ...
      branch_id: {column: Branch, transform: code}
      category: {columns: [Type, Reason], transform: code}   # the first non-empty one
      currency: {value: KES}       # ... or a constant

Only mapped columns are read: whatever else a record holds (names, phones, free text) never
enters the pipeline. Without an ``id`` template the event id is a keyed hash of the mapped
values, so the same record always gets the same id and a re-run adds nothing.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.envelope import FieldError
from contracts.registry import EVENT_TYPES
from services.ingest.errors import IngestError

Transform = Literal["code", "lower", "upper", "bool", "int", "strip"]
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


class FieldSpec(BaseModel):
    """Where one field's value comes from, and how it is cleaned."""

    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    columns: list[str] | None = None
    value: Any = None
    default: Any = None
    transform: Transform | None = None
    date_format: str | None = Field(default=None, description="strptime format of a date")
    datetime_format: str | None = Field(default=None, description="strptime format")

    @model_validator(mode="after")
    def _one_origin(self) -> FieldSpec:
        if sum(x is not None for x in (self.column, self.columns, self.value)) != 1:
            raise ValueError("give exactly one of column, columns, value")
        return self


def _spec(value: Any) -> Any:
    return {"column": value} if isinstance(value, str) else value


class EventMapping(BaseModel):
    """How one kind of record becomes one event type."""

    model_config = ConfigDict(extra="forbid")

    type: str
    source: str | None = None
    id: str | None = None
    time: FieldSpec
    when: str | None = None
    timezone: str | None = None
    fields: dict[str, FieldSpec]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            value = dict(value)
            if "time" in value:
                value["time"] = _spec(value["time"])
            if isinstance(value.get("fields"), Mapping):
                value["fields"] = {k: _spec(v) for k, v in value["fields"].items()}
        return value

    @model_validator(mode="after")
    def _known_type(self) -> EventMapping:
        spec = EVENT_TYPES.get(self.type)
        if spec is None or spec.input_model is None:
            raise ValueError(f"type {self.type!r} is not an event type sources send")
        unknown = set(self.fields) - set(spec.input_model.model_fields)
        if unknown:
            raise ValueError(f"fields not in {self.type}: {', '.join(sorted(unknown))}")
        return self

    def columns(self) -> set[str]:
        """Every column this mapping reads."""
        specs = [self.time, *self.fields.values()]
        cols = {c for s in specs for c in ([s.column] if s.column else s.columns or [])}
        cols |= set(re.findall(r"{([^{}]+)}", self.id or ""))
        return cols | ({self.when} if self.when else set())


class MappingError(IngestError):
    """A mapping file is invalid."""


def load_mappings(path: Path) -> list[EventMapping]:
    """One mapping, or several under ``events:`` (e.g. a complaint opened and resolved)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"cannot read mapping {path}: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise MappingError(f"mapping {path} is not a YAML mapping")
    shared = {k: v for k, v in doc.items() if k in ("source", "timezone")}
    items = doc.get("events", [doc])
    try:
        return [
            EventMapping.model_validate(
                {**shared, **{k: v for k, v in item.items() if k != "events"}}
            )
            for item in items
        ]
    except (ValidationError, AttributeError, TypeError) as exc:
        raise MappingError(f"invalid mapping {path}: {exc}") from exc


class RecordError(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = errors


IdHasher = Callable[[str, str], str]
"""(source, canonical text of the mapped values) -> a deterministic event id."""


def to_event(
    mapping: EventMapping,
    record: Mapping[str, Any],
    *,
    source: str,
    timezone: str,
    hash_id: IdHasher,
) -> dict[str, Any] | None:
    """The structured input event for ``record`` (None when ``when`` excludes it).

    Raises :class:`RecordError` naming the columns that could not be read.
    """
    if mapping.when is not None and not _truthy(record.get(mapping.when)):
        return None
    tz = ZoneInfo(mapping.timezone or timezone)
    errors: list[FieldError] = []
    data: dict[str, Any] = {}
    for name, spec in mapping.fields.items():
        try:
            value = _value(spec, record, tz)
        except ValueError as exc:
            errors.append(FieldError(f"data.{name}", str(exc)))
            continue
        if value is not None:
            data[name] = value
    try:
        when = _value(mapping.time, record, tz, as_time=True)
    except ValueError as exc:
        errors.append(FieldError("time", str(exc)))
        when = None
    if errors:
        raise RecordError(errors)
    if mapping.id:
        try:
            event_id = string.Formatter().vformat(mapping.id, (), _Row(record))
        except (KeyError, ValueError, IndexError) as exc:
            raise RecordError([FieldError("id", f"id template: {exc}")]) from None
    else:
        canonical = "\x1f".join(f"{k}={data[k]}" for k in sorted(data))
        event_id = hash_id(source, f"{mapping.type}\x1f{canonical}")
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": mapping.source or source,
        "type": mapping.type,
        "time": when,
        "data": data,
    }


class _Row(dict[str, Any]):
    def __init__(self, record: Mapping[str, Any]) -> None:
        super().__init__(record)

    def __missing__(self, key: str) -> Any:
        raise KeyError(f"no column {key!r}")


def _value(spec: FieldSpec, record: Mapping[str, Any], tz: ZoneInfo, as_time: bool = False) -> Any:
    if spec.value is not None:
        raw: Any = spec.value
    else:
        names = [spec.column] if spec.column else spec.columns or []
        raw = next((record[n] for n in names if _present(record.get(n))), None)
        if raw is None:
            raw = spec.default
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
    if spec.date_format or spec.datetime_format:
        raw = _parse_time(str(raw), spec, tz, as_time)
    elif as_time and isinstance(raw, str):
        raw = _iso_time(raw, tz)
    return _transform(raw, spec.transform)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _parse_time(raw: str, spec: FieldSpec, tz: ZoneInfo, as_time: bool) -> str:
    fmt = spec.datetime_format or spec.date_format or ""
    try:
        parsed = datetime.strptime(raw, fmt)  # noqa: DTZ007 - localised just below
    except ValueError:
        raise ValueError(f"does not match the format {fmt}") from None
    if spec.date_format and not as_time:
        return parsed.date().isoformat()
    if spec.date_format:
        parsed = datetime.combine(parsed.date(), time())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.isoformat()


def _iso_time(raw: str, tz: ZoneInfo) -> str:
    """An ISO date or timestamp (Salesforce writes ``+0000``) as an aware ISO timestamp."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("is not an ISO 8601 date or timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.isoformat()


def _transform(value: Any, transform: Transform | None) -> Any:
    if transform is None:
        return value
    if transform == "bool":
        return _truthy(value)
    if transform == "int":
        try:
            return int(str(value))
        except ValueError:
            raise ValueError("is not an integer") from None
    text = str(value).strip()
    if transform == "code":
        return re.sub(r"[^A-Za-z0-9_.:-]+", "_", text).strip("_").lower() or None
    if transform == "lower":
        return text.lower()
    if transform == "upper":
        return text.upper()
    return text


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("is not a boolean")


__all__ = ["EventMapping", "FieldSpec", "MappingError", "RecordError", "load_mappings", "to_event"]
