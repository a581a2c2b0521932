"""OpenTelemetry counters of the ingest service (by event type and source, never by content)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from opentelemetry import metrics

Status = str  # accepted | duplicate | conflict | rejected | dead_lettered


class IngestMetrics:
    """Counters ``spm.ingest.events`` labelled with status, type and source."""

    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter("spm.ingest")
        self._events = meter.create_counter(
            "spm.ingest.events",
            unit="{event}",
            description="Events seen by ingest, by status (accepted, duplicate, conflict, "
            "rejected, dead_lettered), event type and source.",
        )

    def count(self, outcomes: Iterable[tuple[Status, str, str]]) -> None:
        """Add one per (status, type, source); grouped so a batch costs a few calls."""
        for (status, type_, source), n in Counter(outcomes).items():
            self._events.add(n, {"status": status, "type": type_, "source": source})
