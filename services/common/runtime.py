"""Process-wide tuning for the long-running services (called by their entry points only)."""

from __future__ import annotations

import gc

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
