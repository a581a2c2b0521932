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
    reason: Literal["firing", "resolved", "repeat", "escalated", "action_overdue", "action_manager"]
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


_ONE_LINE = r"^[^\x00-\x20\x7f]([^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$"
Line = Annotated[str, StringConstraints(max_length=500, pattern=_ONE_LINE)]
"""A one-line text without leading or trailing blanks (it becomes an e-mail subject)."""
Name = Annotated[str, StringConstraints(max_length=200, pattern=_ONE_LINE)]
Notify = Annotated[
    str,
    StringConstraints(max_length=254,
                      pattern=r"^([^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+|[A-Za-z0-9_.:-]+)$"),
]  # fmt: skip
"""An e-mail address, or the name of a receiver of the routing configuration."""
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
IndicatorCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]{0,99}$")]
Segment = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f\s]+$")
]
ActionStatus = Literal["open", "done", "cancelled", "overdue"]
Effectiveness = Literal["effective", "not_effective", "too_early"]


class ActionCreate(BaseModel):
    """An action on an alert (``alert_id``) or a target (``target_id``); ``indicator`` and
    ``segment`` default to the alert's or target's."""

    model_config = ConfigDict(extra="forbid")

    alert_id: Id | None = None
    target_id: Id | None = None
    title: Line
    owner: Name
    owner_notify: Notify | None = None
    due_date: date
    review_date: date
    indicator: IndicatorCode | None = None
    segment: Segment | None = None


class ActionPatch(BaseModel):
    """Only the fields sent change; ``note`` goes into the history with the change."""

    model_config = ConfigDict(extra="forbid")

    title: Line | None = None
    owner: Name | None = None
    owner_notify: Notify | None = None
    due_date: date | None = None
    review_date: date | None = None
    indicator: IndicatorCode | None = None
    segment: Segment | None = None
    status: Literal["open", "done", "cancelled"] | None = None
    note: Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)] | None = None


class ActionHistoryRead(BaseModel):
    at: datetime
    by: str
    event: str
    changes: dict[str, Any]
    note: str | None


class ActionRead(BaseModel):
    id: str
    alert_id: str | None
    target_id: str | None
    objective_id: str | None
    indicator: str
    segment: str
    title: str
    owner: str
    owner_notify: str | None
    status: ActionStatus
    due_date: date
    review_date: date
    created_by: str
    created_at: datetime
    updated_at: datetime
    done_at: datetime | None
    overdue_at: datetime | None
    direction: str | None
    opened_value: Decimal | None
    opened_as_of: date | None
    target_threshold: Decimal | None
    effectiveness: Effectiveness | None
    judged_value: Decimal | None
    judged_as_of: date | None
    judged_at: datetime | None


class ActionDetail(ActionRead):
    history: list[ActionHistoryRead]
