"""The worker processes of one instance (``spm serve indicators --workers N``) join their
consumer group together.

Started one after the other, the first worker's consumer was given every partition and began a
batch; a fraction of a second later the next one joined, and the rebalance waited for that batch
while the newcomer idled (1.7 s at the start of bench-indicators).
Kafka brokers delay a new group's first assignment for this (``group.initial.rebalance.delay.ms``,
3 s by default), but that is the broker's setting, for every group (the local broker's is 0).
So the supervisor hands its workers a barrier (:func:`share`), and a worker starts its consumer
once every sibling has reached :func:`together`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)

WAIT_S = 30.0
"""How long a worker waits for its siblings before it starts alone (one may have failed)."""


class Barrier(Protocol):
    @property
    def parties(self) -> int: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def abort(self) -> None: ...


_barrier: Barrier | None = None


def share(barrier: Barrier) -> None:
    """The barrier of this process's siblings (set by the supervisor, in the worker process)."""
    global _barrier
    _barrier = barrier


async def together() -> int:
    """Return once every sibling worker has called this too: how many workers the instance has
    (1 at once if this process has no siblings, or waited before: a consumer restarted later has
    nobody to wait for, and a worker whose siblings did not come starts alone)."""
    global _barrier
    barrier, _barrier = _barrier, None
    if barrier is None:
        return 1
    try:
        await asyncio.to_thread(barrier.wait, WAIT_S)
    except threading.BrokenBarrierError:
        log.warning("a sibling worker did not start within %.0f s; starting without it", WAIT_S)
        return 1
    except asyncio.CancelledError:
        barrier.abort()  # wakes the waiting thread (and the siblings: they start without us)
        raise
    log.info("all %d workers of this instance are here: starting the consumer", barrier.parties)
    return barrier.parties
