"""``POST /v1/events`` and ``POST /v1/events/batch``: CloudEvents from source systems."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from contracts.examples import EXAMPLES
from services.common.auth import Principal
from services.ingest.api.body import (
    JSON_TYPES,
    NDJSON,
    BodyError,
    media_type,
    parse_batch,
    parse_json,
    read_body,
    source_refused,
    unsupported,
)
from services.ingest.api.deps import IngestState, StateDep, WriterDep
from services.ingest.pipeline import BatchResult
from services.ingest.schemas import ErrorResponse, IngestResponse, RejectedResponse

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["events"])


_INPUT_EXAMPLES = {
    name: {"summary": name, "value": example.input()}
    for name, example in EXAMPLES.items()
    if example.input() is not None
}
_EVENT_SCHEMA = {"type": "object", "description": "A CloudEvent 1.0 in structured JSON mode."}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": IngestResponse,
        "description": "Accepted events are on Kafka (acks=all). Each event's status: accepted, "
        "duplicate (its source sent this id before with the same type and data: nothing new), "
        "conflict (sent before with other content: refused, the first content stays) or "
        "rejected (invalid).",
    },
    401: {"model": ErrorResponse, "description": "No or unknown API key."},
    403: {"model": ErrorResponse, "description": "Scope or source not allowed for this key."},
    413: {"model": ErrorResponse, "description": "Body or batch over the configured limits."},
    415: {"model": ErrorResponse, "description": "Unsupported content type."},
    409: {
        "model": RejectedResponse,
        "description": "Every event re-used an id its source sent before with other content.",
    },
    422: {
        "model": RejectedResponse | ErrorResponse,
        "description": "Nothing in the request was accepted: each event's errors, or why the "
        "request as a whole was refused (not JSON, no events, an integer too long).",
    },
    503: {"model": ErrorResponse, "description": "Kafka unavailable; retry after Retry-After."},
}


def _body_doc(types: tuple[str, ...], schema: dict[str, Any], examples: Any) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {t: {"schema": schema, "examples": examples} for t in types},
        }
    }


_BATCH_EXAMPLES = {
    "batch": {
        "summary": "two events",
        "value": [example["value"] for example in list(_INPUT_EXAMPLES.values())[:2]],
    }
}
_BATCH_DOC = _body_doc(
    ("application/json", "application/cloudevents-batch+json"),
    {"type": "array", "items": _EVENT_SCHEMA},
    _BATCH_EXAMPLES,
)
_BATCH_DOC["requestBody"]["content"][NDJSON] = {
    "schema": {"type": "string", "description": "One structured CloudEvent per line."}
}


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send one event (CloudEvents structured JSON, input form of contract v1)",
    responses=_RESPONSES,
    openapi_extra=_body_doc(JSON_TYPES, _EVENT_SCHEMA, _INPUT_EXAMPLES),
)
async def post_event(request: Request, principal: WriterDep, state: StateDep) -> Response:
    media = media_type(request)
    if media not in JSON_TYPES:
        raise unsupported(media, JSON_TYPES)
    raw = await read_body(request)
    return await _ingest([parse_json(raw)], principal, state)


@router.post(
    "/events/batch",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a batch: a JSON array of events, or NDJSON (application/x-ndjson)",
    responses=_RESPONSES,
    openapi_extra=_BATCH_DOC,
)
async def post_batch(request: Request, principal: WriterDep, state: StateDep) -> Response:
    raw = await read_body(request)
    events = parse_batch(raw, media_type(request), state.settings.ingest_max_batch_events)
    if not events:
        raise BodyError(status.HTTP_422_UNPROCESSABLE_CONTENT, "the batch holds no events")
    return await _ingest(events, principal, state)


async def _ingest(events: list[Any], principal: Principal, state: IngestState) -> Response:
    check_sources(events, principal)
    result = await state.pipeline.ingest(events)
    log.info(
        "ingested request",
        extra={
            "key": principal.name,
            "events": len(events),
            "accepted": result.count("accepted"),
            "duplicates": result.count("duplicate"),
            "conflicts": result.count("conflict"),
            "rejected": result.count("rejected"),
        },
    )
    return answer(result)


def check_sources(events: list[Any], principal: Principal) -> None:
    """403 when the key may not send one of the events' sources (nothing is processed)."""
    for index, event in enumerate(events):
        source = event.get("source") if isinstance(event, dict) else None
        if isinstance(source, str) and not principal.may_send(source):
            raise source_refused(f"[{index}].source")


def answer(result: BatchResult) -> Response:
    body = IngestResponse.body(result)
    if body["accepted"] or body["duplicates"]:
        return _json(body, status.HTTP_202_ACCEPTED)
    body["detail"] = "no event was accepted"
    body["errors"] = [
        {"field": f"[{r['index']}].{e['field']}", "reason": e["reason"]}
        for r in body["results"]
        for e in r["errors"]
    ]
    if body["conflicts"] and not body["rejected"]:
        return _json(body, status.HTTP_409_CONFLICT)
    return _json(body, status.HTTP_422_UNPROCESSABLE_CONTENT)


def _json(body: dict[str, Any], code: int) -> Response:
    return Response(json.dumps(body), code, media_type="application/json")
