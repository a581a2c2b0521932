"""Request rate limits per API key (the ``limits`` library's moving window, in memory).

Each process counts on its own: with ``spm serve ingest --workers N`` a key may send up to N
times the limit in all. That is a guard against one runaway client crowding out the others, not
a quota, so the simplicity is worth it (no shared store to run).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class KeyRateLimit:
    """``spec`` in the ``limits`` notation: ``"100/second"``, ``"100/second;3000/minute"``."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._items: list[RateLimitItem] = parse_many(spec)
        if not self._items:
            raise ValueError(f"no rate limit in {spec!r}")
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str) -> int | None:
        """Count one request of ``key``: None when allowed, else the seconds to wait."""
        for item in self._items:
            if not self._limiter.hit(item, key):
                reset = self._limiter.get_window_stats(item, key).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None
