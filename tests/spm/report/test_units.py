"""The report formats numbers as the dashboard does (spm/dashboard/static/format.js)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from spm.report import units


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        ("0.1056338028169014084507042254", "fraction", "10.6 %"),
        ("40134583.4999", "KES", "40,134,583 KES"),
        ("1296", "count", "1,296"),
        ("12.25", "days", "12.2 days"),
        ("3.14159", "per_1k", "3.14 ‰"),
        ("0.98765", "ratio", "0.988"),
        (None, "fraction", "–"),
        ("not a number", "count", "–"),
    ],
)
def test_values_in_their_units(value: str | None, unit: str, shown: str) -> None:
    assert units.fmt(value, unit) == shown


def test_numerators_have_separators_and_no_long_decimals() -> None:
    assert units.fmt_count("1234567") == "1,234,567"
    assert units.fmt_count("60.5600000000000000000001") == "60.56"


def test_status_and_gap_against_a_target() -> None:
    at_most = {"direction": "at_most", "threshold": "0.10", "warning_threshold": "0.05"}
    assert units.status_of(at_most, "0.04") == "ok"
    assert units.status_of(at_most, "0.07") == "warning"
    assert units.status_of(at_most, "0.25") == "breached"
    assert units.status_of(at_most, None) == "nodata"
    assert units.gap(at_most, "0.25") == Decimal("0.15")
    assert units.gap(at_most, "0.07") is None
    within = {"direction": "within", "threshold": ["0.2", "0.4"]}
    assert units.target_text(within, "fraction") == "20.0 % – 40.0 %"
    assert units.gap(within, "0.1") == Decimal("0.1")


def test_segments_in_words() -> None:
    assert units.segment_label("all") == "Whole institution"
    assert units.segment_label("branch:BR-MSA") == "Branch BR-MSA"
