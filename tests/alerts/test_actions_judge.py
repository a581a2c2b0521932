"""The effectiveness rule and "too early to tell", without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from services.alerts.actions import judge, too_early
from services.alerts.rules import Bounds

AT_LEAST = Bounds(D("0.60"), None)
AT_MOST = Bounds(None, D("0.05"))


@pytest.mark.parametrize(
    ("bounds", "opened", "value", "verdict"),
    [
        (AT_LEAST, D("0.50"), D("0.60"), "effective"),  # back on the line
        (AT_LEAST, D("0.50"), D("0.55"), "effective"),  # exactly half-way back
        (AT_LEAST, D("0.50"), D("0.549"), "not_effective"),
        (AT_LEAST, D("0.50"), D("0.45"), "not_effective"),  # worse
        (AT_MOST, D("0.15"), D("0.10"), "effective"),
        (AT_MOST, D("0.15"), D("0.11"), "not_effective"),
        (AT_LEAST, None, D("0.59"), "not_effective"),  # no opening value: only "on target"
        (AT_LEAST, None, D("0.61"), "effective"),
        (Bounds(D("0.1"), D("0.2")), D("0.3"), D("0.24"), "effective"),
    ],
)
def test_judge(bounds: Bounds, opened: D | None, value: D, verdict: str) -> None:
    threshold = None if opened is None else bounds.nearest(opened)
    assert judge(bounds, opened, threshold, value) == verdict


def test_too_early_needs_a_value_for_a_day_after_the_action_was_done() -> None:
    done = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)
    assert too_early(done, None)
    assert too_early(done, (date(2025, 6, 3), D("0.7")))
    assert not too_early(done, (date(2025, 6, 4), D("0.7")))
    assert too_early(None, (date(2025, 6, 4), D("0.7")))
