"""The counter of ignored Fineract events: one metric point per type, a log line per type and
hour."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from services.ingest.fineract.ignored import METRIC, IgnoredEvents

TYPES = ("SavingsDepositBusinessEvent", "LoanApprovedBusinessEvent")


def metric_values() -> dict[str, float]:
    return {t: REGISTRY.get_sample_value(METRIC, {"type": t}) or 0.0 for t in TYPES}


def test_counts_per_type_in_the_metric_and_logs_each_type_once_an_hour(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = metric_values()
    now = [1000.0]
    ignored = IgnoredEvents(clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="services.ingest.fineract.ignored")
    ignored.count({"SavingsDepositBusinessEvent": 2, "LoanApprovedBusinessEvent": 1})
    now[0] += 3599
    ignored.count({"SavingsDepositBusinessEvent": 1})
    assert len(caplog.records) == 2
    now[0] += 1  # an hour after the first line for this type
    ignored.count({"SavingsDepositBusinessEvent": 1, "LoanApprovedBusinessEvent": 0})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "SavingsDepositBusinessEvent" in lines[2] and "(4 so far" in lines[2]
    assert ignored.totals == {"SavingsDepositBusinessEvent": 4, "LoanApprovedBusinessEvent": 1}
    after = metric_values()
    assert {t: after[t] - before[t] for t in TYPES} == {
        "SavingsDepositBusinessEvent": 4,
        "LoanApprovedBusinessEvent": 1,
    }
