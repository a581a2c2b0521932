"""Reading bounded request bodies and decoding JSON / NDJSON event lists."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import Request, status

from contracts.envelope import FieldError
from services.common.http import error_body
from services.ingest.validation import Invalid

NDJSON = "application/x-ndjson"
JSON_TYPES = ("application/json", "application/cloudevents+json")
BATCH_JSON_TYPES = ("application/json", "application/cloudevents-batch+json")


class BodyError(Exception):
    """A request refused as a whole; answered in the shared error shape (app.py's handler)."""

    def __init__(self, code: int, message: str, field: str = "(body)", reason: str = "") -> None:
        super().__init__(message)
        self.status_code = code
        self.body = error_body([(field, reason or message)], message)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyError(status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


def loads(raw: bytes | str) -> Any:
    """JSON with numbers that have a fraction read as Decimal: money never becomes a float."""
    return json.loads(raw, parse_float=Decimal)


def parse_json(raw: bytes) -> Any:
    try:
        return loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise BodyError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "body is not valid JSON", reason=reason
        ) from None


def parse_batch(raw: bytes, media: str) -> list[Any]:
    """The events of a batch body: a JSON array, or one JSON object per line (NDJSON)."""
    if media == NDJSON:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise BodyError(status.HTTP_422_UNPROCESSABLE_CONTENT, "body is not UTF-8") from None
        events: list[Any] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                events.append(loads(line))
            except (json.JSONDecodeError, RecursionError):
                events.append(Invalid([FieldError("(event)", "line is not valid JSON")]))
        return events
    if media not in BATCH_JSON_TYPES:
        raise unsupported(media, (*BATCH_JSON_TYPES, NDJSON))
    parsed = parse_json(raw)
    if not isinstance(parsed, list):
        raise BodyError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "a batch is a JSON array of events",
            reason="must be a JSON array",
        )
    return parsed


def unsupported(media: str, allowed: tuple[str, ...]) -> BodyError:
    return BodyError(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "unsupported content type",
        field="content-type",
        reason=f"must be one of {', '.join(allowed)}",
    )
