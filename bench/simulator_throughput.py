"""How many simulated days (and events) per second the simulator produces, against a baseline.

1. Baseline: ``json.dumps`` of every event of the run, already generated (the least any sink
   does with an event).
2. Engine: the simulation alone (``simulate_days``), events built but sent nowhere.
3. Engine + NDJSON: the simulation written to an NDJSON file (``spm simulate --to ndjson``).
4. Engine + bus: canonical events (validated, pseudonymised) onto the in-process bus.

Last line: ``simulator days_per_s=<d> events_per_s=<e> baseline_events_per_s=<b>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.bus import MemoryBus  # noqa: E402
from spm.simulator import Scenario, SimConfig, simulate_days  # noqa: E402
from spm.simulator.runner import run  # noqa: E402
from spm.simulator.sinks import BusSink, NdjsonSink  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--clients", type=int, default=1200)
    parser.add_argument("--branches", type=int, default=4)
    args = parser.parse_args()
    config = SimConfig(
        days=args.days, clients=args.clients, branches=args.branches, scenario=Scenario.drift
    )

    began = time.perf_counter()
    days = list(simulate_days(config))
    engine_s = time.perf_counter() - began
    events = sum(len(d) for d in days)

    began = time.perf_counter()
    for day in days:
        for event in day:
            json.dumps(event)
    baseline_s = time.perf_counter() - began

    with tempfile.TemporaryDirectory() as tmp:
        stats = asyncio.run(run(config, NdjsonSink(Path(tmp) / "events.ndjson")))
    bus = MemoryBus()
    bus_stats = asyncio.run(run(config, BusSink(bus, "bench-pepper-0123456789abcdef012", "KES")))

    print(f"events: {events} over {config.days} days ({config.clients} opening clients)")
    print(f"baseline json.dumps: {events / baseline_s:,.0f} events/s")
    print(
        f"engine only:         {config.days / engine_s:,.1f} days/s, {events / engine_s:,.0f} ev/s"
    )
    print(
        f"engine + NDJSON:     {stats.days / stats.seconds:,.1f} days/s, "
        f"{stats.events / stats.seconds:,.0f} ev/s"
    )
    print(
        f"engine + bus:        {bus_stats.days / bus_stats.seconds:,.1f} days/s, "
        f"{bus_stats.events / bus_stats.seconds:,.0f} ev/s (validated, pseudonymised)"
    )
    print(
        f"simulator days_per_s={config.days / engine_s:.1f} events_per_s={events / engine_s:.0f} "
        f"baseline_events_per_s={events / baseline_s:.0f}"
    )


if __name__ == "__main__":
    main()
