"""Silence matchers are RE2: a pattern that makes a backtracking engine run for minutes is
matched in linear time, and patterns RE2 cannot run are refused when a silence is created."""

from __future__ import annotations

import time

import pytest

from services.alerts.schemas import Matcher
from services.alerts.silences import MAX_REGEX_LENGTH, BadPattern, compile_regex, matches

PATHOLOGICAL = "([0-9a-f]+)+z"  # nested quantifiers: 2^n paths for Python's re on a miss


def test_a_pathological_pattern_is_matched_in_linear_time() -> None:
    fingerprint = "0123456789abcdef0123456789abcd"  # 30 hex characters, no z: a miss
    started = time.perf_counter()
    missed = matches(
        [{"name": "fingerprint", "op": "=~", "value": PATHOLOGICAL}], {"fingerprint": fingerprint}
    )
    hit = matches(
        [{"name": "fingerprint", "op": "=~", "value": PATHOLOGICAL}],
        {"fingerprint": fingerprint + "z"},
    )
    negated = matches(
        [{"name": "fingerprint", "op": "!~", "value": PATHOLOGICAL}],
        {"fingerprint": fingerprint * 30},
    )
    elapsed = time.perf_counter() - started
    assert (missed, hit, negated) == (False, True, True)
    # Python's re needs minutes for the first call; RE2 takes microseconds. The bound is
    # generous so a loaded machine does not flake.
    assert elapsed < 1.0, elapsed


def test_matching_is_anchored() -> None:
    lab = {"segment": "branch:BR-01"}
    assert matches([{"name": "segment", "op": "=~", "value": "branch:.*"}], lab)
    assert not matches([{"name": "segment", "op": "=~", "value": "BR-01"}], lab)
    assert not matches([{"name": "segment", "op": "=~", "value": "branch:BR-0"}], lab)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(a)\\1", "RE2"),  # back-reference
        ("(?=a)a", "RE2"),  # look-ahead
        ("a" * (MAX_REGEX_LENGTH + 1), "at most"),
    ],
)
def test_patterns_re2_refuses_are_refused_at_creation(pattern: str, reason: str) -> None:
    with pytest.raises(BadPattern, match=reason):
        compile_regex(pattern)
    with pytest.raises(ValueError, match=reason):
        Matcher.model_validate({"name": "segment", "op": "=~", "value": pattern})
    assert Matcher.model_validate({"name": "segment", "op": "=", "value": pattern[:200]})


def test_a_stored_pattern_re2_refuses_matches_nothing() -> None:
    """A silence stored before patterns were checked must not silence everything (or crash)."""
    lab = {"segment": "all"}
    assert not matches([{"name": "segment", "op": "=~", "value": "(a)\\1|all"}], lab)
    assert not matches([{"name": "segment", "op": "!~", "value": "(a)\\1"}], lab)
