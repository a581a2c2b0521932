"""Fineract business events that give no canonical event: counted per type, logged once an hour.

Nothing is dropped silently (docs/architecture.md): a type the adapter does not map (a savings
deposit, a loan approval, a charge-off…), or a mapped type with nothing to say this time (a
status change that does not close the loan, an undo of a disbursal published before the adapter
ran), adds one to the Prometheus counter ``spm_fineract_events_ignored_total{type=...}``, and
the first of each type in an hour is logged at INFO with the running count. The list of types
and why each is left out is in ``docs/fineract-unmapped.md``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping

from services.common.metrics import FINERACT_IGNORED

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 3600.0
METRIC = "spm_fineract_events_ignored_total"


class IgnoredEvents:
    """Per-type totals of ignored business events, the metric, and the hourly log line."""

    def __init__(
        self,
        *,
        log_interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = log_interval_s
        self._clock = clock
        self._logged_at: dict[str, float] = {}
        self.totals: Counter[str] = Counter()

    def count(self, by_type: Mapping[str, int]) -> None:
        now = self._clock()
        for type_, n in by_type.items():
            if n <= 0:
                continue
            self.totals[type_] += n
            FINERACT_IGNORED.labels(type_).inc(n)
            last = self._logged_at.get(type_)
            if last is None or now - last >= self._interval:
                self._logged_at[type_] = now
                log.info(
                    "Fineract %s gives no canonical event: ignored (%d so far; metric %s)",
                    type_,
                    self.totals[type_],
                    METRIC,
                )
