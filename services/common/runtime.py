"""Process-wide tuning for the long-running services (called by their entry points only)."""

from __future__ import annotations

import gc
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


@contextmanager
def collector_paused() -> Iterator[None]:
    """Suspend the cyclic garbage collector for a burst of allocations (one batch of events).

    A batch of 20,000 events keeps some 10^6 objects alive until it is written (records, events,
    rows), so every young collection during it walks them again and finds nothing: on the
    indicator engine that was a fifth of the CPU (bench/indicators_throughput.py: 18,200 →
    22,000 events/s with the collector off). Reference counting frees the batch afterwards; the
    few cycles it made are collected once the collector resumes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
