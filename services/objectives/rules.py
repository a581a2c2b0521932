"""Rules a target must satisfy beyond its field types; each violation names its field."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from decimal import Decimal

from contracts import indicator_codes
from contracts.envelope import FieldError
from services.objectives.schemas import TargetFields, Threshold

_SAFE_SIDE = {
    "at_least": "above the threshold for at_least",
    "at_most": "below the threshold for at_most",
    "within": "inside the threshold bounds for within",
}


def bounds(value: Threshold) -> list[Decimal]:
    return value if isinstance(value, list) else [value]


def check_target(target: TargetFields, prefix: str) -> list[FieldError]:
    errors: list[FieldError] = []
    entry = indicator_codes.lookup(target.indicator)
    dimension = indicator_codes.segment_dimension(target.segment)
    if entry is not None and dimension is not None and dimension not in entry.segments:
        available = ", ".join(["all", *sorted(f"{d}:" for d in entry.segments)])
        errors.append(
            FieldError(
                f"{prefix}.segment",
                f"{target.indicator} has no {dimension} breakdown (available: {available})",
            )
        )
    line = _check_shape(target.direction, target.threshold, f"{prefix}.threshold")
    errors += line
    if target.warning_threshold is not None:
        band = _check_shape(
            target.direction, target.warning_threshold, f"{prefix}.warning_threshold"
        )
        errors += band
        if not line and not band and not _on_safe_side(target):
            errors.append(
                FieldError(
                    f"{prefix}.warning_threshold",
                    "the warning band lies before the line, on the safe side: it must be "
                    + _SAFE_SIDE[target.direction],
                )
            )
    if entry is not None and entry.unit == "fraction":
        for name in ("threshold", "warning_threshold"):
            value = getattr(target, name)
            if value is not None and any(not 0 <= b <= 1 for b in bounds(value)):
                errors.append(
                    FieldError(
                        f"{prefix}.{name}",
                        f"{target.indicator} is a fraction between 0 and 1 (60 % is 0.6)",
                    )
                )
    if target.effective_to is not None and target.effective_to < target.effective_from:
        errors.append(FieldError(f"{prefix}.effective_to", "must not be before effective_from"))
    return errors


def check_recipients(
    target: TargetFields, prefix: str, domains: Collection[str]
) -> list[FieldError]:
    """E-mail recipients must be in an allowed domain (none configured: any domain)."""
    if not domains:
        return []
    return [
        FieldError(
            f"{prefix}.notify.{i}",
            f"the domain {domain} is not one alerts may be mailed to "
            f"(OBJECTIVES_RECIPIENT_DOMAINS: {', '.join(sorted(domains))})",
        )
        for i, recipient in enumerate(target.notify)
        if "@" in recipient and (domain := recipient.rsplit("@", 1)[1].lower()) not in domains
    ]


def _check_shape(direction: str, value: Threshold, field: str) -> list[FieldError]:
    values = bounds(value)
    if direction == "within":
        if not isinstance(value, list) or len(values) != 2:
            return [FieldError(field, "within needs two bounds [low, high]")]
        if values[0] >= values[1]:
            return [FieldError(field, "the low bound must be below the high bound")]
        return []
    if isinstance(value, list):
        return [FieldError(field, f"{direction} needs a single number, not a list")]
    return []


def _on_safe_side(target: TargetFields) -> bool:
    assert target.warning_threshold is not None  # noqa: S101 - checked by the caller
    line, band = bounds(target.threshold), bounds(target.warning_threshold)
    if target.direction == "at_least":
        return band[0] > line[0]
    if target.direction == "at_most":
        return band[0] < line[0]
    return line[0] < band[0] <= band[1] < line[1]


def overlaps(a_from: date, a_to: date | None, b_from: date, b_to: date | None) -> bool:
    """Whether two inclusive periods (open-ended when ``to`` is None) share a day."""
    return a_from <= (b_to or date.max) and b_from <= (a_to or date.max)


def period(start: date, end: date | None) -> str:
    return f"{start.isoformat()}..{end.isoformat() if end else 'open'}"


def check_overlaps_within(targets: Sequence[TargetFields], prefix: str) -> list[FieldError]:
    """Targets of one list on the same indicator and segment must not share a day."""
    errors = []
    for j, b in enumerate(targets):
        for i, a in enumerate(targets[:j]):
            same = (a.indicator, a.segment) == (b.indicator, b.segment)
            if same and overlaps(
                a.effective_from, a.effective_to, b.effective_from, b.effective_to
            ):
                errors.append(
                    FieldError(
                        f"{prefix}.{j}.effective_from",
                        f"overlaps target {i} ({period(a.effective_from, a.effective_to)}) for "
                        f"the same indicator and segment",
                    )
                )
    return errors
