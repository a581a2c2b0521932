"""Reading request bodies and decoding JSON / NDJSON event lists, bounded.

The size of a body is the request guard's concern (services.common.guard: it refuses one over
the route's limit before or while reading). What is decoded here is bounded too:

- a batch is decoded one event at a time and refused with 413 at its ``limit + 1``-th event, so
  a 10 MiB array of a million ``{}`` never becomes a million dicts (that cost 256 MB);
- an integer longer than Python converts (``sys.get_int_max_str_digits()``, 4,300 digits)
  raised ``ValueError`` inside ``json.loads``, a 500; it is now a 422 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Final

from fastapi import Request, status

from contracts.envelope import FieldError
from services.common.errors import Refused
from services.ingest.validation import Invalid

NDJSON = "application/x-ndjson"
JSON_TYPES = ("application/json", "application/cloudevents+json")
BATCH_JSON_TYPES = ("application/json", "application/cloudevents-batch+json")
LONG_INTEGER = "integer too long (more digits than the 4300 Python converts)"

_decoder = json.JSONDecoder(parse_float=Decimal)


class _TooLong:
    """Stands in for an integer too long to convert, so its place can be named."""


_TOO_LONG: Final = _TooLong()


def _int_or_marker(text: str) -> int | _TooLong:
    try:
        return int(text)
    except ValueError:
        return _TOO_LONG


_marking_decoder = json.JSONDecoder(parse_float=Decimal, parse_int=_int_or_marker)


class BodyError(Refused):
    """A request refused as a whole (``code``: 400, 403, 413, 422), in the shared error shape."""

    def __init__(self, code: int, message: str, field: str = "(body)", reason: str = "") -> None:
        super().__init__(field, reason or message, message)
        self.status = code


class LongIntegers(ValueError):
    """A JSON value holds integers too long to convert; ``fields`` are their paths."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields

    def invalid(self) -> Invalid:
        return Invalid([FieldError(f, LONG_INTEGER) for f in self.fields])

    def body_error(self) -> BodyError:
        return BodyError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "body holds an integer too long",
            field=self.fields[0],
            reason=LONG_INTEGER,
        )


async def read_body(request: Request) -> bytes:
    """The body (its size already bounded by the request guard)."""
    return await request.body()


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


def decode(text: str, start: int = 0) -> tuple[Any, int]:
    """One JSON value from ``text[start:]`` and where it ends: numbers that have a fraction
    read as Decimal (money never becomes a float). Raises ``json.JSONDecodeError``,
    :class:`LongIntegers` or ``RecursionError``."""
    try:
        return _decoder.raw_decode(text, start)
    except json.JSONDecodeError:
        raise
    except ValueError:  # int() refused a number: find where, with the marking decoder
        marked, end = _marking_decoder.raw_decode(text, start)
        raise LongIntegers(list(_long_paths(marked, ""))) from None


def _long_paths(value: Any, path: str) -> Iterator[str]:
    if value is _TOO_LONG:
        yield path or "(body)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _long_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _long_paths(item, f"{path}[{index}]")


def loads(raw: bytes | str) -> Any:
    """One whole JSON document (only whitespace around it)."""
    text = raw if isinstance(raw, str) else raw.decode(json.detect_encoding(raw), "surrogatepass")
    value, end = decode(text, _skip(text, 0))
    if _skip(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def parse_json(raw: bytes) -> Any:
    try:
        return loads(raw)
    except LongIntegers as exc:
        raise exc.body_error() from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _not_json(exc) from None


def _not_json(exc: Exception) -> BodyError:
    reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
    return BodyError(status.HTTP_422_UNPROCESSABLE_CONTENT, "body is not valid JSON", reason=reason)


def too_many(limit: int) -> BodyError:
    return BodyError(status.HTTP_413_CONTENT_TOO_LARGE, f"a batch holds at most {limit} events")


def parse_batch(raw: bytes, media: str, limit: int) -> list[Any]:
    """The events of a batch body: a JSON array, or one JSON object per line (NDJSON). An
    event that cannot be decoded becomes an :class:`Invalid` in its place; more than ``limit``
    events: 413, decided at the ``limit + 1``-th."""
    if media == NDJSON:
        return _ndjson_events(raw, limit)
    if media not in BATCH_JSON_TYPES:
        raise unsupported(media, (*BATCH_JSON_TYPES, NDJSON))
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        return _array_events(text, limit)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _not_json(exc) from None


def _array_events(text: str, limit: int) -> list[Any]:
    at = _skip(text, 0)
    if not text.startswith("[", at):
        loads(text)  # not valid JSON: raises; valid but not an array: refused below
        raise BodyError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "a batch is a JSON array of events",
            reason="must be a JSON array",
        )
    events: list[Any] = []
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return _ended(text, at, events)
    while True:
        if len(events) == limit:
            raise too_many(limit)
        try:
            event, at = decode(text, at)
        except LongIntegers as exc:
            event, at = exc.invalid(), _marking_decoder.raw_decode(text, at)[1]
        events.append(event)
        at = _skip(text, at)
        if text.startswith("]", at):
            return _ended(text, at, events)
        if not text.startswith(",", at):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
        at = _skip(text, at + 1)


def _ended(text: str, at: int, events: list[Any]) -> list[Any]:
    if _skip(text, at + 1) != len(text):
        raise json.JSONDecodeError("Extra data", text, at + 1)
    return events


def _skip(text: str, at: int) -> int:
    """Past the JSON whitespace at ``at``."""
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at


def _ndjson_events(raw: bytes, limit: int) -> list[Any]:
    events: list[Any] = []
    start = 0
    while start < len(raw):
        end = raw.find(b"\n", start)
        end = len(raw) if end < 0 else end
        line, start = raw[start:end], end + 1
        if not line.strip():
            continue
        if len(events) == limit:
            raise too_many(limit)
        events.append(_line_event(line))
    return events


def _line_event(line: bytes) -> Any:
    try:
        return loads(line.decode())
    except LongIntegers as exc:
        return exc.invalid()
    except UnicodeDecodeError:
        return Invalid([FieldError("(event)", "line is not UTF-8")])
    except (json.JSONDecodeError, RecursionError):
        return Invalid([FieldError("(event)", "line is not valid JSON")])


def unsupported(media: str, allowed: tuple[str, ...]) -> BodyError:
    return BodyError(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "unsupported content type",
        field="content-type",
        reason=f"must be one of {', '.join(allowed)}",
    )


def source_refused(field: str) -> BodyError:
    """403: the API key may not send events of this source (nothing is processed)."""
    return BodyError(
        status.HTTP_403_FORBIDDEN,
        "this API key may not send events of this source",
        field=field,
        reason="source not allowed for this API key",
    )
