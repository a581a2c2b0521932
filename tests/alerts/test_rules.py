"""The pure rules: business days, bounds with hysteresis, trend fits, state steps."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.alerts.rules import Bounds, Calendar, Condition, Current, Hysteresis, step, trend

CAL = Calendar(frozenset({0, 1, 2, 3, 4}), frozenset({date(2025, 6, 4)}))
MON, FRI, NEXT_MON = date(2025, 6, 2), date(2025, 6, 6), date(2025, 6, 9)


def test_business_days_skip_weekends_and_holidays() -> None:
    assert CAL.between(MON, MON) == 0
    assert CAL.between(MON, FRI) == 3  # Tue, Thu, Fri (Wed is a holiday)
    assert CAL.between(FRI, NEXT_MON) == 1
    assert CAL.index([MON, FRI, NEXT_MON], NEXT_MON) == [-4, -1, 0]


def test_hysteresis_margin_relative_or_absolute() -> None:
    line = Bounds(Decimal("0.60"), None)
    h = Hysteresis(Decimal("0.02"), Decimal("0"))
    assert line.beyond(Decimal("0.599")) and not line.beyond(Decimal("0.60"))
    assert not line.back_within(Decimal("0.611"), h)
    assert line.back_within(Decimal("0.612"), h)
    upper = Bounds(None, Decimal("0.10"))
    assert upper.back_within(Decimal("0.09"), Hysteresis(Decimal("0"), Decimal("0.01")))
    assert not upper.back_within(Decimal("0.095"), Hysteresis(Decimal("0"), Decimal("0.01")))


def test_trend_crossing() -> None:
    t = trend([-4, -3, -2, -1, 0], [0.70, 0.69, 0.68, 0.67, 0.66], Bounds(Decimal("0.60"), None))
    assert round(t.slope, 6) == -0.01 and t.crosses_in is not None
    assert round(t.crosses_in, 6) == 6.0
    flat = trend([-2, -1, 0], [0.7, 0.7, 0.7], Bounds(Decimal("0.60"), None))
    assert flat.crosses_in is None
    rising = trend([-2, -1, 0], [0.05, 0.06, 0.07], Bounds(None, Decimal("0.10")))
    assert rising.crosses_in is not None and round(rising.crosses_in, 6) == 3.0


def test_steps() -> None:
    on, off = Condition(True, False), Condition(False, True)
    hovering = Condition(False, False)  # not breached, but not past the margin either
    assert step(None, off, MON, 2, CAL) == "none"
    assert step(None, on, MON, 0, CAL) == "firing"
    assert step(None, on, MON, 2, CAL) == "pending"
    pending = Current("pending", MON, MON)
    assert step(pending, on, date(2025, 6, 3), 2, CAL) == "stay"
    assert step(pending, on, date(2025, 6, 5), 2, CAL) == "firing"
    assert step(pending, off, date(2025, 6, 3), 2, CAL) == "inactive"
    firing = Current("firing", MON, FRI)
    assert step(firing, hovering, NEXT_MON, 2, CAL) == "stay"
    assert step(firing, off, NEXT_MON, 2, CAL) == "resolved"
