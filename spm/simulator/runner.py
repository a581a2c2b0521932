"""Drive a simulation into a sink, as fast as possible or at N simulated days per second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from spm.simulator.config import SimConfig
from spm.simulator.engine import SimDay, Simulation
from spm.simulator.sinks import Sink


@dataclass(slots=True)
class RunStats:
    days: int = 0
    events: int = 0
    seconds: float = 0.0


async def run(
    config: SimConfig,
    sink: Sink,
    *,
    days_per_second: float | None = None,
    on_day: Callable[[SimDay], None] | None = None,
) -> RunStats:
    """Send every simulated day to ``sink`` (closing it at the end); returns what was sent.

    With ``days_per_second`` each day is sent no earlier than its slot, so a demo's indicators
    move at a watchable pace; without it the run goes as fast as the sink takes events.
    """
    stats = RunStats()
    began = time.monotonic()
    try:
        for sim_day in Simulation(config).days():
            if days_per_second:
                slot = began + stats.days / days_per_second
                await asyncio.sleep(max(0.0, slot - time.monotonic()))
            await sink.send(sim_day.events)
            stats.days += 1
            stats.events += len(sim_day.events)
            if on_day is not None:
                on_day(sim_day)
    finally:
        await sink.close()
        stats.seconds = time.monotonic() - began
    return stats
