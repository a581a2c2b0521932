"""Event payloads of contract v1, in two forms.

The *canonical* form travels on Kafka: identifiers of people are keyed pseudonyms
(``client_pid``, ``officer_pid``) and unknown fields are rejected, so nothing unexpected — and
nothing personal — rides along. The *input* form is what sources send to ingest: the same fields,
but with raw ``client_id`` / ``officer_id``; unknown fields are accepted and dropped, because
core-banking exports carry much more than we want (names, phones, free text).

Each canonical model is written once; its input twin is derived from it (``input_model``), so the
two forms cannot drift apart.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    create_model,
)
from pydantic.json_schema import WithJsonSchema

SCOPE_SEPARATOR = ":"
SOURCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,99}$"

SourceId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=SOURCE_ID_PATTERN),
    Field(
        description="The id as the source has it: a code (letters, digits, _ . / -), no spaces, "
        "no ':'. Ingest scopes it as <source>:<id>."
    ),
]
"""A loan, transaction or complaint id as its source has it (input form), e.g. ``2001`` or
``CASE-00017342``: a code, not free text — letters, digits and ``_ . / -``, at most 100
characters, no spaces and no ``:``. Ingest scopes it as ``<source>:<id>``; since the id has no
``:``, two (source, id) pairs never give the same scoped id."""

Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f\x7f-\x9f]+$"),
    Field(
        description="Scoped by the source: <source>:<the source's id>, e.g. fineract:default:2001."
    ),
]
"""A source-scoped identifier such as ``fineract:default:2001`` (``<source>:<source id>``): no
spaces, no control characters, at most 200 characters."""

PersonId = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
"""A raw client or officer id (input form only): ingest turns it into a keyed pseudonym, so it
may be any text a source uses (a national id with spaces, say); it never travels on."""

Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""A reference code shared across systems (branch, product, category, reason)."""

Pseudonym = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""HMAC-SHA256 pseudonym, hex encoded."""

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def _non_negative(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite decimal")
    if value < 0:
        raise ValueError("must not be negative")
    return value


# Money, written once for code and documents. ``$(?!\n)`` ends the string in both regex dialects
# that read these patterns: ECMA-262 (JSON Schema's) and Python's re (whose ``$`` also matches
# before a final newline, which the lookahead refuses).
MONEY_INPUT_PATTERN = r"^[0-9]{1,16}(?:\.[0-9]{1,4}0*)?$(?!\n)"
"""A money string ingest accepts: plain decimal notation, non-negative, at most 16 digits before
the point and 4 significant decimals (more trailing zeros are fine: ``3633.33000000``)."""
MONEY_PATTERN = r"^(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,4})?$(?!\n)"
"""Money as published: plain decimal notation, never an exponent (``100000``, not ``1E+5``)."""
MONEY_REASON = (
    "must be a plain decimal such as 45000.00: digits, then optionally a point and at most 4 "
    "decimals (no sign, exponent, spaces or separators)"
)
_MONEY_INPUT = re.compile(MONEY_INPUT_PATTERN.removeprefix("^").removesuffix("$(?!\n)"))
_FOUR_PLACES = Decimal("0.0001")


def _plain_money(value: Decimal) -> str:
    """Plain decimal notation, at most 4 decimals: exact, since validation allows no more than
    4 significant ones (``1E+5`` -> ``100000``, ``1.10000`` -> ``1.1000``, ``-0`` -> ``0``)."""
    text = str(value)  # the common case (``45000.00``) is already plain: one C call
    dot = text.find(".")
    if "E" not in text and text[0] != "-" and (dot < 0 or len(text) - dot <= 5):
        return text
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        value = value.quantize(_FOUR_PLACES)
    return format(value.copy_abs() if value.is_zero() else value, "f")


def _input_money(value: Any) -> Any:
    """What ingest accepts as money: a string matching ``MONEY_INPUT_PATTERN`` (non-negative and
    finite by construction), or a finite non-negative number; pydantic's decimal validation
    (digits, places) follows. One Python call per field: ingest validates every event."""
    if isinstance(value, str):
        if _MONEY_INPUT.fullmatch(value):
            return value
        raise ValueError(MONEY_REASON)
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
            raise ValueError("must be a finite decimal")
        if value < 0:
            raise ValueError("must not be negative")
    return value


_MONEY_OUT = PlainSerializer(_plain_money, return_type=str, when_used="json")

Money = Annotated[
    Decimal,
    Field(max_digits=20, decimal_places=4),
    AfterValidator(_non_negative),
    _MONEY_OUT,
    WithJsonSchema(
        {"type": "string", "format": "decimal", "pattern": MONEY_PATTERN}, mode="serialization"
    ),
]
"""Money as a decimal (a JSON string on the wire, in plain notation), never a float.

Readers are lenient (any finite non-negative decimal string, as contract 1.0 published it);
writers always publish ``MONEY_PATTERN``.
"""

InputMoney = Annotated[
    Decimal,
    Field(
        max_digits=20,
        decimal_places=4,
        json_schema_extra={"format": "decimal", "pattern": MONEY_INPUT_PATTERN, "minimum": 0},
    ),
    BeforeValidator(_input_money),
    _MONEY_OUT,
]
"""Money as sources send it: a JSON number, or a string matching ``MONEY_INPUT_PATTERN``."""

Gender = Literal["female", "male", "other", "unknown"]
ExitType = Literal["voluntary", "involuntary", "inactive", "deceased", "inferred"]
ClosureType = Literal["repaid", "written_off", "rescheduled", "other"]

BIRTH_YEAR_MIN = 1900
BIRTH_YEAR_MAX = 2100


class CanonicalData(BaseModel):
    """Base of every canonical payload: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientRegistered(CanonicalData):
    client_pid: Pseudonym
    branch_id: Code
    gender: Gender
    birth_year: Annotated[int, Field(ge=BIRTH_YEAR_MIN, le=BIRTH_YEAR_MAX)] | None = None
    rural: bool | None = None
    registered_on: date


class ClientExited(CanonicalData):
    client_pid: Pseudonym
    branch_id: Code | None = None
    exited_on: date
    exit_type: ExitType
    reason_code: Code | None = None


class PovertyAssessed(CanonicalData):
    client_pid: Pseudonym
    tool: Code
    poverty_line: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    likelihood: Annotated[Decimal, Field(ge=0, le=1, max_digits=12, decimal_places=10)]
    assessed_on: date


class LoanDisbursed(CanonicalData):
    loan_id: Identifier
    client_pid: Pseudonym
    branch_id: Code
    product_id: Code
    officer_pid: Pseudonym | None = None
    loan_cycle: Annotated[int, Field(ge=1, le=1000)] | None = None
    amount: Money
    currency: CurrencyCode
    term_months: Annotated[int, Field(ge=1, le=600)] | None = None
    instalment_monthly: Money | None = None
    household_income_monthly: Money | None = None
    other_active_lenders: Annotated[int, Field(ge=0, le=100)] | None = None
    disbursed_on: date
    transaction_id: Identifier | None = None  # v1.1: what a loan.transaction_reversed cancels


class LoanRepayment(CanonicalData):
    loan_id: Identifier
    client_pid: Pseudonym
    transaction_id: Identifier
    value_date: date
    amount: Money
    principal_paid: Money
    interest_paid: Money | None = None
    outstanding_principal_after: Money | None = None


class LoanTransactionReversed(CanonicalData):
    loan_id: Identifier
    client_pid: Pseudonym
    transaction_id: Identifier
    reversed_on: date


class LoanDelinquency(CanonicalData):
    loan_id: Identifier
    client_pid: Pseudonym
    as_of: date
    days_past_due: Annotated[int, Field(ge=0, le=100_000)]
    bucket_min_days: Annotated[int, Field(ge=0)] | None = None
    bucket_max_days: Annotated[int, Field(ge=0)] | None = None
    arrears_amount: Money | None = None
    outstanding_principal: Money | None = None


class LoanWrittenOff(CanonicalData):
    loan_id: Identifier
    client_pid: Pseudonym
    principal_written_off: Money
    written_off_on: date
    transaction_id: Identifier | None = None  # v1.1: what a loan.transaction_reversed cancels


class LoanClosed(CanonicalData):
    loan_id: Identifier
    client_pid: Pseudonym
    closed_on: date
    closure_type: ClosureType


class ComplaintOpened(CanonicalData):
    complaint_id: Identifier
    client_pid: Pseudonym | None = None
    branch_id: Code
    channel: Code
    category: Code
    severity: Code | None = None
    opened_at: AwareDatetime


class ComplaintResolved(CanonicalData):
    complaint_id: Identifier
    resolved_at: AwareDatetime
    outcome: Code


class IndicatorChanged(CanonicalData):
    """Output of the indicator service: one value of one indicator and segment changed."""

    code: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    segment: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    as_of: date
    value: Decimal | None
    numerator: Decimal | None
    denominator: Decimal | None
    n: int | None = None
    previous_value: Decimal | None = None
    computed_at: AwareDatetime


class TargetChanged(CanonicalData):
    """Output of the objectives service: the full current state of one target (key = target_id).

    The topic is compacted, so the latest record per target is its state; a target removed from
    its objective, or whose objective was retired, gets ``status = retired``. Bounds are explicit
    so a consumer needs no direction logic: a breach is ``value < lower`` or ``value > upper``,
    a warning ``value < warning_lower`` or ``value > warning_upper`` (absent bound = no check).
    """

    target_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    objective_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    objective_code: Code
    objective_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    dimension: Annotated[str, StringConstraints(pattern=r"^D[1-7]$")]
    status: Literal["active", "retired"]
    indicator: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    segment: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    direction: Literal["at_least", "at_most", "within"]
    lower: Decimal | None = None
    upper: Decimal | None = None
    warning_lower: Decimal | None = None
    warning_upper: Decimal | None = None
    for_days: Annotated[int, Field(ge=0, le=366)]
    severity: Literal["info", "warning", "critical"]
    notify: tuple[Annotated[str, StringConstraints(min_length=1, max_length=254)], ...] = ()
    """E-mail addresses (with ``@``) and named routes of the alert service."""
    effective_from: date
    effective_to: date | None = None
    version: Annotated[int, Field(ge=1)]
    """The objective version that produced this state."""
    changed_at: AwareDatetime
    owner: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    """v1.2: the objective's owner, the person who answers for it (notifications name them)."""


class AlertChanged(CanonicalData):
    """Output of the alert service: an alert changed state, or was acknowledged (key =
    fingerprint).

    One alert per target, segment and ``kind`` (the fingerprint); ``alert_id`` names one episode
    of it. ``inactive`` is a pending alert that cleared before firing (no notification was sent).
    """

    alert_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]
    target_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    objective_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    objective_code: Code
    indicator: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    segment: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    kind: Literal["breach", "warning", "trend", "nodata"]
    state: Literal["pending", "firing", "resolved", "inactive"]
    severity: Literal["info", "warning", "critical"]
    value: Decimal | None = None
    threshold: Decimal | None = None
    as_of: date | None = None
    """The business date of the value that caused the change."""
    since: date | None = None
    """First business date of the episode's breach."""
    acknowledged_by: Annotated[str, StringConstraints(max_length=200)] | None = None
    changed_at: AwareDatetime


class ActionChanged(CanonicalData):
    """Output of the alert service: a corrective action was recorded, changed, became overdue or
    was judged (key = action id). The full current state of the action each time.

    ``effectiveness`` is set once the action is done and its review date has come:
    ``effective`` (the segment is back on target, or has moved at least half-way back from
    ``opened_value`` towards ``target_threshold``), ``not_effective``, or ``too_early`` (no value
    of the indicator for a business day after the action was done).
    """

    action_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    change: Literal["created", "updated", "overdue", "judged"]
    alert_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    target_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    objective_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    indicator: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    segment: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    owner: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    status: Literal["open", "done", "cancelled", "overdue"]
    due_date: date
    review_date: date
    done_at: AwareDatetime | None = None
    effectiveness: Literal["effective", "not_effective", "too_early"] | None = None
    opened_value: Decimal | None = None
    judged_value: Decimal | None = None
    target_threshold: Decimal | None = None
    changed_by: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    changed_at: AwareDatetime


class InputData(BaseModel):
    """Base of every input payload: unknown fields (names, phones, notes…) are dropped."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# Canonical field name -> input field name. The value in the input form is a raw identifier.
PSEUDONYMISED_FIELDS: dict[str, str] = {"client_pid": "client_id", "officer_pid": "officer_id"}
# Identifiers a source sends as its own code (SourceId) and ingest scopes by the source.
SCOPED_FIELDS = ("loan_id", "transaction_id", "complaint_id")


# Canonical field type -> its stricter input twin.
_INPUT_TWINS: tuple[tuple[Any, Any], ...] = ((Money, InputMoney), (Money | None, InputMoney | None))


def input_model(canonical: type[CanonicalData]) -> type[InputData]:
    """Derive the input form of a canonical payload model."""
    fields: dict[str, Any] = {}
    hints = get_type_hints(canonical, include_extras=True)
    for name, info in canonical.model_fields.items():
        twin = next((i for c, i in _INPUT_TWINS if hints[name] == c), None)
        if twin is not None:
            fields[name] = (twin, ... if info.is_required() else None)
        elif name in PSEUDONYMISED_FIELDS:
            raw_field = (PersonId, ...) if info.is_required() else (PersonId | None, None)
            fields[PSEUDONYMISED_FIELDS[name]] = raw_field
        elif name in SCOPED_FIELDS:
            fields[name] = (SourceId, ...) if info.is_required() else (SourceId | None, None)
        else:
            fields[name] = (info.annotation, info)
    model: type[InputData] = create_model(
        f"{canonical.__name__}Input",
        __base__=InputData,
        __module__=__name__,
        __doc__=f"Input form of {canonical.__name__}: raw identifiers instead of pseudonyms.",
        **fields,
    )
    return model
