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
    status: Literal["accepted", "duplicate", "conflict", "rejected"] = Field(
        description="accepted: on Kafka now. duplicate: this source sent this id before with the "
        "same content (type and data); nothing new is published. conflict: this source sent "
        "this id before with OTHER content; refused, the first content stays (send a correction "
        "as a new event with a new id). rejected: invalid, see errors."
    )
    errors: list[FieldErrorRead] = Field(default_factory=list)


class IngestResponse(BaseModel):
    """202: every accepted event is on Kafka (acks=all). 422 when every event was rejected."""

    accepted: int
    duplicates: int
    conflicts: int
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
        counts = {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
        for o in result.outcomes:
            counts[o.status] += 1
        return {
            "accepted": counts["accepted"],
            "duplicates": counts["duplicate"],
            "conflicts": counts["conflict"],
            "rejected": counts["rejected"],
            "results": results,
        }


class RejectedResponse(IngestResponse):
    """422 (or 409 when every event was a conflict): nothing was accepted; ``errors`` lists every
    field at fault as ``[index].field``."""

    detail: str
    errors: list[FieldErrorRead]


class ErrorResponse(BaseModel):
    detail: str
    errors: list[FieldErrorRead] = Field(default_factory=list)
