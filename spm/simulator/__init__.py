"""A synthetic microfinance institution that emits contract v1 input events, day by day.

Consumes nothing; produces CloudEvents in the input form sources send to ingest (raw
``client_id`` / ``officer_id``), one list per simulated day, deterministic for a seed. Sinks send
them to the ingest HTTP API, straight onto the bus (pseudonymised in-process), or to NDJSON/CSV
files. Stores nothing. Used by ``spm simulate``, the embedded demo, load tests and e2e tests.
"""

from spm.simulator.config import Scenario, SimConfig
from spm.simulator.engine import SimDay, Simulation, simulate, simulate_days

__all__ = ["Scenario", "SimConfig", "SimDay", "Simulation", "simulate", "simulate_days"]
