"""The counter of ignored Fineract events: one metric point per type, a log line per type and
hour."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from services.ingest.fineract.ignored import METRIC, IgnoredEvents


def test_counts_per_type_in_the_metric_and_logs_each_type_once_an_hour(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = InMemoryMetricReader()
    now = [1000.0]
    ignored = IgnoredEvents(MeterProvider(metric_readers=[reader]), clock=lambda: now[0])
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
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        point.attributes["type"]: point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == METRIC
        for point in metric.data.data_points  # type: ignore[union-attr]
    }
    assert points == {"SavingsDepositBusinessEvent": 4, "LoanApprovedBusinessEvent": 1}
