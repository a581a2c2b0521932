"""Garbage-collector tuning for the long-running services (their entry points and batch loops)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

GEN0_THRESHOLD = 25_000
"""Allocations between young-generation collections (CPython's default is 700)."""


def tune_gc() -> None:
    """Collect garbage less often and never walk what start-up allocated.

    A batch of 1,000 events allocates some 10^5 short-lived objects. With CPython's defaults a
    collection runs every few events, and the older generations hold the ~10^5 objects of the
    imported modules, which every full collection walks again. Freezing those and collecting
    the young generation less often cut ingest's CPU per event by about a quarter
    (bench/ingest_throughput.py). Reference counting still frees almost everything at once; only
    cycles wait for the next collection.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 10, 10)


class BatchCollector:
    """Garbage collection for a consumer that applies large batches to a long-lived state.

    A batch of 20,000 events keeps some 10^6 objects alive until it is written (records, events,
    rows), so every young collection during it walks them again and finds nothing; and what
    survives a batch is mostly the state (clients, loans and what they contributed), which lives
    as long as the process and which the older generations' collections walk again and again.
    On the indicator engine the collector took a fifth of the time (bench/indicators_throughput.py:
    18,200 → 22,000 events/s with it off).
    So the collector pauses during a batch (:meth:`paused`), and what is alive after a batch is
    frozen (:meth:`keep`): collections skip it. Reference counting frees almost everything as
    usual, frozen or not; only cycles that die once frozen wait for the full collection that
    :meth:`keep` runs every ``full_interval_s``. That collection walks the whole state and holds
    the event loop meanwhile: 2.8 s for the state of 1,000,000 events (measured), once per
    interval, instead of the older generations' collections walking it again and again.
    """

    def __init__(self, full_interval_s: float = 600.0) -> None:
        self.full_interval_s = full_interval_s
        self._last_full = time.monotonic()

    @contextmanager
    def paused(self) -> Iterator[None]:
        enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if enabled:
                gc.enable()

    def keep(self) -> None:
        """Freeze what is alive now (call it after a batch, inside :meth:`paused`)."""
        if time.monotonic() - self._last_full >= self.full_interval_s:
            gc.unfreeze()
            gc.collect()
            self._last_full = time.monotonic()
        gc.freeze()
