"""The indicator codes other services check targets against: the fixed catalog and the open
families (one indicator per exit reason code, one per poverty line), split at the first dot."""

from __future__ import annotations

import pytest

from contracts.indicator_codes import CLIENT_SEGMENTS, is_indicator_code, lookup


@pytest.mark.parametrize(
    "code",
    [
        "par30",
        "poverty_outreach_entry",
        "poverty_outreach_entry.national",
        "poverty_outreach_entry.usd_3.20",  # the line is everything after the first dot
        "poverty_outreach_entry.$2.15_2017ppp",
        "exit_reason_share.moved_away",
    ],
)
def test_catalog_and_family_codes_are_accepted(code: str) -> None:
    assert is_indicator_code(code)


@pytest.mark.parametrize(
    "code",
    ["par31", "poverty_outreach_entry.", "poverty_outreach_entry. national",
     "poverty_outreach_entry." + "x" * 65, "exit_reason_share.", "poverty_outreach_entryx"],
)  # fmt: skip
def test_other_codes_are_refused(code: str) -> None:
    assert not is_indicator_code(code)


def test_a_poverty_line_indicator_is_a_client_fraction() -> None:
    entry = lookup("poverty_outreach_entry.usd_3.20")
    assert entry is not None
    assert (entry.unit, entry.segments) == ("fraction", CLIENT_SEGMENTS)
