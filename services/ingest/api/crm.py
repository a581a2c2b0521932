"""``POST /v1/sources/crm/complaints``: complaint records pushed by a CRM (webhook)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from services.ingest.api.body import (
    BodyError,
    parse_batch,
    parse_json,
    read_body,
    source_refused,
    too_many,
)
from services.ingest.api.deps import StateDep, WriterDep
from services.ingest.api.events import answer
from services.ingest.pipeline import BatchResult, Outcome
from services.ingest.schemas import ErrorResponse, IngestResponse, RejectedResponse

router = APIRouter(prefix="/v1/sources/crm", tags=["sources"])


_CASE_EXAMPLE = {
    "Id": "5003X00002AbCdEQAV",
    "CaseNumber": "00017342",
    "CreatedDate": "2025-03-05T09:12:44.000+0000",
    "ClosedDate": "2025-03-12T15:02:10.000+0000",
    "IsClosed": True,
    "Origin": "Phone",
    "Type": "Loan Terms",
    "Reason": "Interest Rate",
    "Priority": "High",
    "Status": "Closed",
    "Branch_Code__c": "BR-NAI-01",
    "Client_Reference__c": "1042",
    "Subject": "never forwarded",
    "Description": "never forwarded",
}


@router.post(
    "/complaints",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Complaint records from a CRM (one record, an array, or {'records': [...]})",
    description="Records are mapped by the configured field mapping (INGEST_CRM_MAPPING; default "
    "a Salesforce Case mapping) to spm.complaint.opened.v1 and, for closed cases, "
    "spm.complaint.resolved.v1. Result indexes are record positions.",
    responses={
        202: {"model": IngestResponse},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        409: {
            "model": RejectedResponse,
            "description": "Every record re-used an id with other content.",
        },
        422: {"model": RejectedResponse | ErrorResponse},
        503: {"model": ErrorResponse},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": ["object", "array"]},
                    "examples": {"case": {"summary": "a closed case", "value": _CASE_EXAMPLE}},
                }
            },
        }
    },
)
async def post_complaints(request: Request, principal: WriterDep, state: StateDep) -> Response:
    raw = await read_body(request)
    limit = state.settings.ingest_max_batch_events
    if raw.lstrip().startswith(b"["):  # an array is decoded one record at a time
        records = parse_batch(raw, "application/json", limit)
    else:
        records = _records(parse_json(raw))
    if len(records) > limit:
        raise too_many(limit)
    for source in state.crm.sources:
        if not principal.may_send(source):
            raise source_refused("source")
    events, origins = state.crm.events(records)
    result = await state.pipeline.ingest(events)
    by_record = BatchResult(
        [Outcome(origins[o.index], o.id, o.status, o.errors) for o in result.outcomes]
    )
    return answer(by_record)


def _records(body: Any) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("records"), list):
        return list(body["records"])
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return [body]
    raise BodyError(status.HTTP_422_UNPROCESSABLE_CONTENT, "expected a record or an array")
