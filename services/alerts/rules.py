"""Pure alerting rules: business days, breach tests with hysteresis, trend fits, state steps.

No I/O here, so each rule can be tested on its own and replayed exactly: evaluation time is the
indicator's business date (``as_of``), never the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from contracts.events import TargetChanged

Kind = Literal["breach", "warning", "trend", "nodata"]
State = Literal["pending", "firing", "resolved", "inactive"]
Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
_MAX_SCAN_DAYS = 3660


@dataclass(frozen=True, slots=True)
class Calendar:
    """Which dates are business days: some weekdays, minus holidays."""

    weekdays: frozenset[int]
    holidays: frozenset[date] = frozenset()

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def between(self, start: date, end: date) -> int:
        """Business days in ``(start, end]`` (0 when ``end <= start``)."""
        if end <= start:
            return 0
        span = min((end - start).days, _MAX_SCAN_DAYS)
        return sum(self.is_business_day(start + timedelta(days=i)) for i in range(1, span + 1))

    def index(self, days: Iterable[date], latest: date) -> list[int]:
        """Each day as minus the business days between it and ``latest`` (latest = 0)."""
        return [-self.between(day, latest) for day in days]


@dataclass(frozen=True, slots=True)
class Hysteresis:
    relative: Decimal
    absolute: Decimal

    def margin(self, threshold: Decimal) -> Decimal:
        return max(self.relative * abs(threshold), self.absolute)


@dataclass(frozen=True, slots=True)
class Bounds:
    lower: Decimal | None
    upper: Decimal | None

    def beyond(self, value: Decimal) -> bool:
        """The value is past a bound (a breach of this line)."""
        return (self.lower is not None and value < self.lower) or (
            self.upper is not None and value > self.upper
        )

    def back_within(self, value: Decimal, hysteresis: Hysteresis) -> bool:
        """The value is back inside the bounds by at least the hysteresis margin."""
        low_ok = self.lower is None or value >= self.lower + hysteresis.margin(self.lower)
        high_ok = self.upper is None or value <= self.upper - hysteresis.margin(self.upper)
        return low_ok and high_ok

    def nearest(self, value: Decimal) -> Decimal | None:
        """The bound the value is nearest to (the one a notification names)."""
        candidates = [b for b in (self.lower, self.upper) if b is not None]
        return min(candidates, key=lambda b: abs(value - b)) if candidates else None

    @property
    def defined(self) -> bool:
        return self.lower is not None or self.upper is not None


def line(target: TargetChanged) -> Bounds:
    return Bounds(target.lower, target.upper)


def band(target: TargetChanged) -> Bounds:
    return Bounds(target.warning_lower, target.warning_upper)


def kind_severity(target: TargetChanged, kind: Kind) -> Severity:
    """A breach carries the target's severity; early signs (warning band, trend, no data) one
    step less, never below info."""
    if kind == "breach":
        return target.severity
    return "warning" if target.severity == "critical" else "info"


@dataclass(frozen=True, slots=True)
class Trend:
    slope: float
    """Change per business day of the fitted line."""
    fitted: float
    """The fitted value at the latest day."""
    crosses_in: float | None
    """Business days until the fitted line crosses a bound, if it is heading for one."""


def fit(xs: Sequence[int], ys: Sequence[float]) -> tuple[float, float]:
    """Least squares ``y = a + b x``: returns (a, b)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return mean_y, 0.0
    b = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    return mean_y - b * mean_x, b


def trend(xs: Sequence[int], ys: Sequence[float], bounds: Bounds) -> Trend:
    """Where the least-squares line through the points is heading, relative to ``bounds``."""
    fitted, slope = fit(xs, ys)
    crosses: float | None = None
    if bounds.lower is not None and slope < 0 and fitted >= float(bounds.lower):
        crosses = (float(bounds.lower) - fitted) / slope
    if bounds.upper is not None and slope > 0 and fitted <= float(bounds.upper):
        up = (float(bounds.upper) - fitted) / slope
        crosses = up if crosses is None else min(crosses, up)
    return Trend(slope, fitted, crosses)


@dataclass(frozen=True, slots=True)
class Condition:
    """What a rule says about one day: ``active`` enters (or keeps) an alert; ``clear`` ends a
    firing one (stricter than ``not active`` when there is hysteresis)."""

    active: bool
    clear: bool


@dataclass(frozen=True, slots=True)
class Current:
    state: State
    since: date
    as_of: date


Step = Literal["none", "pending", "firing", "stay", "resolved", "inactive"]


def step(
    current: Current | None, cond: Condition, as_of: date, for_days: int, cal: Calendar
) -> Step:
    """The transition of one alert on one business day (Prometheus ``for``, in business days).

    ``pending`` opens an episode, ``firing`` promotes (or opens and fires at once when
    ``for_days`` is 0), ``stay`` keeps the state with a new value, ``resolved`` ends a firing
    episode, ``inactive`` drops a pending one quietly.
    """
    if current is None or current.state in ("resolved", "inactive"):
        if not cond.active:
            return "none"
        return "firing" if for_days == 0 else "pending"
    if current.state == "pending":
        if not cond.active:
            return "inactive"
        return "firing" if cal.between(current.since, as_of) >= for_days else "stay"
    return "resolved" if cond.clear else "stay"
