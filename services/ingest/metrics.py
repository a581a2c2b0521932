"""Ingest's event counters (by outcome, event type and source, never by content).

The family itself is ``spm_ingest_events`` in services/common/metrics.py, with every other one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from services.common.metrics import count_ingest

Status = str  # accepted | duplicate | conflict | rejected | dead_lettered


class IngestMetrics:
    """Counts what ingest did with each event it saw."""

    def count(self, outcomes: Iterable[tuple[Status, str, str]]) -> None:
        """Add one per (status, type, source); grouped so a batch costs a few calls."""
        count_ingest(Counter(outcomes))
