"""API shapes of alerts, silences and notifications."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

AlertState = Literal["pending", "firing", "resolved"]
LabelName = Literal[
    "objective", "target", "indicator", "segment", "kind", "severity", "fingerprint"
]


class AlertRead(BaseModel):
    id: str
    fingerprint: str
    target_id: str
    objective_id: str
    objective_code: str
    indicator: str
    segment: str
    kind: Literal["breach", "warning", "trend", "nodata"]
    state: AlertState
    severity: Literal["info", "warning", "critical"]
    value: Decimal | None
    threshold: Decimal | None
    since: date
    as_of: date
    fired_on: date | None
    resolved_on: date | None
    detail: dict[str, Any]
    created_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acked_at: datetime | None
    acked_by: str | None
    ack_comment: str | None


class AckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)] | None = None


def _regex(matcher: Matcher) -> Matcher:
    if matcher.op in ("=~", "!~"):
        try:
            re.compile(matcher.value)
        except re.error as exc:
            raise ValueError(f"value is not a valid regular expression: {exc}") from None
    return matcher


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: LabelName
    value: Annotated[str, StringConstraints(max_length=500)]
    op: Literal["=", "!=", "=~", "!~"] = "="


class SilenceCreate(BaseModel):
    """A silence needs an end: there are no open-ended silences."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[Annotated[Matcher, AfterValidator(_regex)]] = Field(min_length=1, max_length=20)
    comment: Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime


class SilenceRead(BaseModel):
    id: str
    matchers: list[Matcher]
    created_by: str
    comment: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    expired_by: str | None
    status: Literal["pending", "active", "expired"]


class NotificationRead(BaseModel):
    id: str
    """The idempotency key (``Message-ID`` / ``Idempotency-Key``)."""
    group_key: str
    receiver: str
    channel: Literal["email", "webhook"]
    destination: str
    format: str
    reason: Literal["firing", "resolved", "repeat"]
    subject: str
    alert_ids: list[str]
    status: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
