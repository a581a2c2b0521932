"""The indicator codes of catalog v1 and the segment syntax, as data other services can check.

The catalog itself (formulas, windows) lives in the indicator service; services that only need to
know whether a code or a segment is valid — the objectives service refusing a target on an
unknown indicator — read this list instead of importing that service or calling it at run time.
Keep it in step with ``docs/indicators.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Unit = Literal["count", "amount", "fraction", "ratio", "per_1k", "days"]
"""``fraction`` values lie between 0 and 1 (shares, rates, probabilities)."""

SegmentDimension = Literal["branch", "product", "gender", "rural"]

LOAN_SEGMENTS: frozenset[SegmentDimension] = frozenset({"branch", "product", "gender", "rural"})
CLIENT_SEGMENTS: frozenset[SegmentDimension] = frozenset({"branch", "gender", "rural"})
COMPLAINT_SEGMENTS: frozenset[SegmentDimension] = frozenset({"branch"})


@dataclass(frozen=True, slots=True)
class IndicatorCode:
    code: str
    unit: Unit
    segments: frozenset[SegmentDimension]
    """Segment dimensions besides ``all`` that the indicator is broken down by."""


def _codes(unit: Unit, segments: frozenset[SegmentDimension], *codes: str) -> list[IndicatorCode]:
    return [IndicatorCode(code, unit, segments) for code in codes]


INDICATOR_CODES: dict[str, IndicatorCode] = {
    c.code: c
    for c in (
        _codes("count", LOAN_SEGMENTS, "active_borrowers")
        + _codes("amount", LOAN_SEGMENTS, "gross_loan_portfolio", "avg_disbursed_amount")
        + _codes(
            "fraction",
            LOAN_SEGMENTS,
            "women_borrower_share",
            "rural_borrower_share",
            "new_borrower_women_share",
            "par30",
            "par90",
            "dsti_breach_share",
            "multi_lender_share",
        )
        + _codes("ratio", LOAN_SEGMENTS, "avg_balance_gni_ratio", "write_off_ratio")
        + _codes("count", CLIENT_SEGMENTS, "active_clients")
        + _codes(
            "fraction",
            CLIENT_SEGMENTS,
            "poverty_outreach_entry",
            "dropout_rate",
            "client_retention_rate",
        )
        + _codes("per_1k", COMPLAINT_SEGMENTS, "complaints_per_1k_clients")
        + _codes(
            "fraction", COMPLAINT_SEGMENTS, "complaints_resolved_in_sla", "conduct_complaint_share"
        )
        + _codes(
            "days",
            COMPLAINT_SEGMENTS,
            "complaint_resolution_days_p50",
            "complaint_resolution_days_p90",
        )
        + _codes("count", COMPLAINT_SEGMENTS, "open_complaints_past_sla")
    )
}

EXIT_REASON_PREFIX = "exit_reason_share."
"""``exit_reason_share.<reason_code>``: one indicator per exit reason code."""
# Python's ``$`` also matches before a final newline: these patterns are only ever used with
# ``fullmatch``, so a value with a trailing "\n" is refused.
_REASON_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
POVERTY_PREFIX = "poverty_outreach_entry."
"""``poverty_outreach_entry.<poverty_line>``: the poverty outreach against one poverty line
(``poverty_outreach_entry`` alone is the institution's primary line)."""

SEGMENT_PATTERN = re.compile(
    r"^(all|branch:[A-Za-z0-9_.:-]{1,64}|product:[A-Za-z0-9_.:-]{1,64}"
    r"|gender:(female|male|other|unknown)|rural:(true|false))$"
)


def lookup(code: str) -> IndicatorCode | None:
    """The catalog entry of ``code`` (``exit_reason_share.<reason>`` included), else None."""
    if code in INDICATOR_CODES:
        return INDICATOR_CODES[code]
    reason = code.removeprefix(EXIT_REASON_PREFIX)
    if reason != code and _REASON_CODE.fullmatch(reason):
        return IndicatorCode(code, "fraction", CLIENT_SEGMENTS)
    line = code.removeprefix(POVERTY_PREFIX)
    if line != code and 0 < len(line) <= 64 and line.strip() == line:
        return IndicatorCode(code, "fraction", CLIENT_SEGMENTS)
    return None


def is_indicator_code(code: str) -> bool:
    return lookup(code) is not None


def segment_dimension(segment: str) -> str | None:
    """``branch`` for ``branch:BR-01``; None for ``all``. Raises ValueError on bad syntax."""
    if not SEGMENT_PATTERN.fullmatch(segment):
        raise ValueError(
            "segment must be all, branch:<id>, product:<id>, gender:<female|male|other|unknown>"
            " or rural:<true|false>"
        )
    return None if segment == "all" else segment.split(":", 1)[0]
