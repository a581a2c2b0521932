"""API shapes of alerts, silences and notifications."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.alerts.notify.sms import mask_phone
from services.alerts.silences import BadPattern, compile_regex

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
    """Who acknowledged: a key's name or a person's display name."""
    acked_by_subject: str | None = None
    """The person's stable identifier (their identity provider's subject); null for a key."""
    ack_comment: str | None


class AckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)] | None = None


class MatcherRead(BaseModel):
    """A stored matcher as it is (one saved before regexes were checked is still listed)."""

    name: LabelName
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: str


class Matcher(MatcherRead):
    model_config = ConfigDict(extra="forbid")

    value: Annotated[str, StringConstraints(max_length=500)]
    """A label value, or for ``=~`` / ``!~`` an RE2 regular expression (anchored) of at most
    200 characters."""

    @field_validator("value")
    @classmethod
    def _regex(cls, value: str, info: ValidationInfo) -> str:
        """A regex must compile with RE2 (linear-time matching) within the length cap."""
        if info.data.get("op") in ("=~", "!~"):
            try:
                compile_regex(value)
            except BadPattern as exc:
                raise ValueError(str(exc)) from None
        return value


class SilenceCreate(BaseModel):
    """A silence needs an end: there are no open-ended silences."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[Matcher] = Field(min_length=1, max_length=20)
    comment: Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime


class SilenceRead(BaseModel):
    id: str
    matchers: list[MatcherRead]
    created_by: str
    created_by_subject: str | None = None
    comment: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    expired_by: str | None
    expired_by_subject: str | None = None
    branch: str | None = None
    """The branch the silence is limited to (its ``segment = branch:<code>`` matcher); null:
    institution-wide."""
    status: Literal["pending", "active", "expired"]


class NotificationRead(BaseModel):
    id: str
    """The idempotency key (``Message-ID`` / ``Idempotency-Key``)."""
    group_key: str
    receiver: str
    channel: Literal["email", "webhook", "sms"]
    destination: str
    """For SMS, the phone number masked (``+2547******00``): numbers are never shown in full."""
    format: str
    reason: Literal["firing", "resolved", "repeat", "escalated"]
    subject: str
    alert_ids: list[str]
    status: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @model_validator(mode="after")
    def _mask_phone(self) -> NotificationRead:
        if self.channel == "sms":
            self.destination = mask_phone(self.destination)
        return self
