"""Numbers, targets and segments in words, by the dashboard's rules
(``spm/dashboard/static/format.js``): a board member reads the same "10.6 %" or "40,134,583 KES"
in the report as on the dashboard, never a raw decimal with 28 digits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

Status = Literal["ok", "warning", "breached", "nodata"]

SHARE_UNITS = frozenset({"share", "fraction", "likelihood"})
STATUS_LABEL: dict[Status, str] = {
    "ok": "On target",
    "warning": "Warning",
    "breached": "Off target",
    "nodata": "No data",
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DIMENSIONS = {"branch": "Branch", "product": "Product", "gender": "Gender", "rural": "Rural"}


def number(value: Any) -> Decimal | None:
    """An API value (a JSON string or number) as a Decimal; None when absent or not a number."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        v = Decimal(str(value))
    except InvalidOperation:
        return None
    return v if v.is_finite() else None


def fmt(value: Any, unit: str | None) -> str:
    """A value in its unit as the dashboard's ``fmt()`` shows it."""
    v = number(value)
    if v is None:
        return "–"
    if unit in SHARE_UNITS:
        return f"{v * 100:.1f} %"
    if unit == "count":
        return f"{round(v):,}"
    if unit == "days":
        return f"{v:.1f} days"
    if unit in ("per_1k", "per_1000"):
        return f"{v:.2f} ‰"
    if unit == "ratio":
        return f"{v:.3f}"
    if unit and _CURRENCY.match(unit):
        return f"{round(v):,} {unit}"
    return f"{round(v, 4).normalize():,f}"


def fmt_count(value: Any) -> str:
    """A numerator or denominator: thousands separators, at most two decimals."""
    v = number(value)
    if v is None:
        return "–"
    return f"{round(v, 2).normalize():,f}"


def bounds(threshold: Any) -> tuple[Decimal | None, Decimal | None]:
    """A target's threshold (one number, or ``[low, high]`` for ``within``) as (low, high)."""
    if isinstance(threshold, list | tuple):
        low, high = (list(threshold) + [None, None])[:2]
        return number(low), number(high)
    v = number(threshold)
    return v, v


def target_text(target: Mapping[str, Any], unit: str | None) -> str:
    low, high = bounds(target.get("threshold"))
    if target.get("direction") == "at_least":
        return f"≥ {fmt(low, unit)}"
    if target.get("direction") == "at_most":
        return f"≤ {fmt(high, unit)}"
    return f"{fmt(low, unit)} – {fmt(high, unit)}"


def _outside(direction: Any, v: Decimal, low: Decimal | None, high: Decimal | None) -> bool:
    below = direction != "at_most" and low is not None and v < low
    above = direction != "at_least" and high is not None and v > high
    return below or above


def status_of(target: Mapping[str, Any], value: Any) -> Status:
    """Where a value stands against a target, as the dashboard's ``statusOf()``."""
    v = number(value)
    if v is None:
        return "nodata"
    direction = target.get("direction")
    if _outside(direction, v, *bounds(target.get("threshold"))):
        return "breached"
    warning = target.get("warning_threshold")
    if warning is not None and _outside(direction, v, *bounds(warning)):
        return "warning"
    return "ok"


def gap(target: Mapping[str, Any], value: Any) -> Decimal | None:
    """How far a value lies beyond the target's line, on the wrong side (positive), or None when
    it meets the target or has no value."""
    v = number(value)
    if v is None:
        return None
    low, high = bounds(target.get("threshold"))
    direction = target.get("direction")
    if direction != "at_most" and low is not None and v < low:
        return low - v
    if direction != "at_least" and high is not None and v > high:
        return v - high
    return None


def segment_label(segment: str | None) -> str:
    """``all`` → ``Whole institution``; ``branch:BR-MSA`` → ``Branch BR-MSA``."""
    if not segment or segment == "all":
        return "Whole institution"
    parts = []
    for piece in segment.split(","):
        dim, _, value = piece.partition(":")
        parts.append(f"{_DIMENSIONS.get(dim, dim.capitalize())} {value}".strip())
    return ", ".join(parts)
