"""Shapes of the ingest HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from services.ingest.pipeline import BatchResult


class FieldErrorRead(BaseModel):
    field: str = Field(examples=["data.amount"])
    reason: str = Field(examples=["Input should be a valid decimal"])


class EventResultRead(BaseModel):
    index: int = Field(description="Position of the event in the request (0 for one event).")
    id: str | None = Field(description="The event's CloudEvents id, when it had a readable one.")
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[FieldErrorRead] = Field(default_factory=list)


class IngestResponse(BaseModel):
    """202: every accepted event is on Kafka (acks=all). 422 when every event was rejected."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResultRead]

    @staticmethod
    def body(result: BatchResult) -> dict[str, Any]:
        """The response body as plain JSON data (built directly: batches hold 5,000 results)."""
        results = [
            {
                "index": o.index,
                "id": o.id,
                "status": o.status,
                "errors": [{"field": e.field, "reason": e.reason} for e in o.errors],
            }
            for o in result.outcomes
        ]
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for o in result.outcomes:
            counts[o.status] += 1
        return {
            "accepted": counts["accepted"],
            "duplicates": counts["duplicate"],
            "rejected": counts["rejected"],
            "results": results,
        }


class RejectedResponse(IngestResponse):
    """422: nothing was accepted; ``errors`` lists every field at fault as ``[index].field``."""

    detail: str
    errors: list[FieldErrorRead]


class ErrorResponse(BaseModel):
    detail: str
    errors: list[FieldErrorRead] = Field(default_factory=list)
