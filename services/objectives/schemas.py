"""API shapes of objectives and targets (also the shapes of the strategy file)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from contracts import indicator_codes

Direction = Literal["at_least", "at_most", "within"]
Severity = Literal["info", "warning", "critical"]
Status = Literal["active", "retired"]
Dimension = Literal["D1", "D2", "D3", "D4", "D5", "D6", "D7"]
"""Universal Standards for Social and Environmental Performance Management, dimensions 1-7."""

# An address is a plain ``local@domain`` (RFC 5322 dot-atom, no quoting, no display name): no
# comma, space or line break can smuggle a second recipient or a header into the message.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
ROUTE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
# Always ``fullmatch``: Python's ``$`` also matches before a final newline.
_EMAIL = re.compile(EMAIL_PATTERN)
_ROUTE = re.compile(ROUTE_PATTERN)


def _indicator(code: str) -> str:
    if not indicator_codes.is_indicator_code(code):
        raise ValueError(f"unknown indicator code {code!r} (see the indicator catalog)")
    return code


def _segment(segment: str) -> str:
    indicator_codes.segment_dimension(segment)
    return segment


def _recipient(value: str) -> str:
    if "@" in value:
        if not _EMAIL.fullmatch(value):
            raise ValueError(f"{value!r} is not an e-mail address")
    elif not _ROUTE.fullmatch(value):
        raise ValueError(f"{value!r} is neither an e-mail address nor a route name ([a-z0-9_.-])")
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


IndicatorCode = Annotated[str, StringConstraints(max_length=100), AfterValidator(_indicator)]
# The patterns in the JSON Schema document the checks the validators make (with ``fullmatch``).
Segment = Annotated[
    str,
    StringConstraints(max_length=200),
    AfterValidator(_segment),
    WithJsonSchema(
        {"type": "string", "maxLength": 200, "pattern": indicator_codes.SEGMENT_PATTERN.pattern}
    ),
]
Recipient = Annotated[
    str,
    StringConstraints(min_length=1, max_length=254),
    AfterValidator(_recipient),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 254,
            "pattern": f"^(?:{EMAIL_PATTERN[1:-1]}|{ROUTE_PATTERN[1:-1]})$",
            "description": "An e-mail address (local@domain) or the name of an alert route.",
        }
    ),
]
Number = Annotated[Decimal, Field(max_digits=24, decimal_places=10), AfterValidator(_finite)]


def _one_error(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One clear message instead of one per union member."""
    try:
        return handler(value)
    except ValidationError as exc:
        reasons = sorted({e["msg"] for e in exc.errors() if e["type"] != "decimal_type"})
        detail = f" ({'; '.join(reasons)})" if reasons and isinstance(value, list) else ""
        raise PydanticCustomError(
            "threshold", "must be a number, or two numbers [low, high]{detail}", {"detail": detail}
        ) from None


Threshold = Annotated[Number | list[Number], WrapValidator(_one_error)]
"""One number for ``at_least`` / ``at_most``; two bounds ``[low, high]`` for ``within``."""
ObjectiveCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Text = Annotated[str, StringConstraints(max_length=5000)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


class TargetFields(BaseModel):
    """What a target says; cross-field rules (bounds, bands, periods) are checked by the service
    so that each error can name its field."""

    model_config = ConfigDict(extra="forbid")

    indicator: IndicatorCode
    segment: Segment = "all"
    direction: Direction
    threshold: Threshold
    warning_threshold: Threshold | None = None
    for_days: int = Field(default=0, ge=0, le=366, description="Business days a breach must last.")
    severity: Severity = "warning"
    notify: list[Recipient] = Field(default_factory=list, max_length=50)
    effective_from: date
    effective_to: date | None = None
    rationale: Text | None = None


class TargetIn(TargetFields):
    id: str | None = Field(default=None, description="An existing target to change; none = new.")


class TargetRead(TargetFields):
    id: str
    objective_id: str
    objective_code: str
    status: Status = Field(description="retired when its objective is retired")


class ObjectiveFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: ObjectiveCode = Field(description="Short stable name, e.g. women-outreach.")
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Text = ""
    dimension: Dimension
    owner: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    rationale: Text | None = None


class ObjectiveCreate(ObjectiveFields):
    targets: list[TargetFields] = Field(min_length=1, max_length=100)
    reason: Reason = "objective created"


class ObjectiveUpdate(BaseModel):
    """A partial change; ``targets`` (when given) is the full new list of targets."""

    model_config = ConfigDict(extra="forbid")

    code: ObjectiveCode | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    description: Text | None = None
    dimension: Dimension | None = None
    owner: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    rationale: Text | None = None
    status: Status | None = None
    targets: list[TargetIn] | None = Field(default=None, min_length=1, max_length=100)
    version: int | None = Field(default=None, ge=1, description="Or send If-Match.")
    reason: Reason


class ObjectiveRead(ObjectiveFields):
    id: str
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    targets: list[TargetRead]


class DiffEntry(BaseModel):
    path: str
    before: Any = None
    after: Any = None


class VersionRead(BaseModel):
    objective_id: str
    version: int
    action: Literal["created", "updated", "retired", "reactivated"]
    author: str
    """A key's name or a person's display name."""
    author_subject: str | None = None
    """The person's stable identifier (identity provider subject); null for a key."""
    changed_at: datetime
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    diff: list[DiffEntry]
