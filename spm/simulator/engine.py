"""The simulated MFI, one business day at a time.

Day 0 also carries the *opening book*: clients registered over the previous years, each with a
current loan whose past instalments were paid on time, so indicators start from a mature
institution instead of an empty one. Every later day runs the agenda (instalments, late payments,
repeat loans, exits, complaint resolutions), ages arrears, then onboards new clients and opens
new complaints.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from spm.simulator import behaviour as bh
from spm.simulator.config import SimConfig
from spm.simulator.loans import LoanBook
from spm.simulator.world import Client, World

WEEKEND_FACTOR = 0.3


@dataclass(frozen=True, slots=True)
class SimDay:
    day: date
    events: list[dict[str, Any]]


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.w = World(config)
        self.loans = LoanBook(self.w)
        branches = config.branch_list
        self._officers = _officers_by_branch(branches, config.officers)
        self._sequence = dict.fromkeys(branches, 0)

    def days(self) -> Iterator[SimDay]:
        """Yields each simulated day's events; nothing is computed ahead of the consumer."""
        cfg = self.config
        for offset in range(cfg.days):
            day = cfg.start + timedelta(days=offset)
            if offset == 0:
                self._opening_book(day)
            for action in self.w.agenda.pop(day, []):
                action(day)
            self.loans.age(day)
            for index, branch in enumerate(cfg.branch_list):
                self._onboard(branch, index, day)
                self._complaints(branch, day)
            yield SimDay(day, self.w.drain())

    # --- clients ---------------------------------------------------------------------------

    def _register(self, branch: str, index: int, day: date) -> Client:
        w = self.w
        d = self.config.drift(day, branch)
        self._sequence[branch] += 1
        female = bh.is_female(self._sequence[branch], index * 0.37, d)
        client = Client(
            w.next_id("client", "C{:06d}"), branch, w.rng.choice(self._officers[branch])
        )
        w.clients[client.id] = client
        w.branch_clients[branch].append(client)
        w.active_count[branch] += 1
        when = w.factory.at(day, w.seconds(8, 12))
        w.emit(
            "spm.client.registered.v1",
            when,
            {
                "client_id": client.id,
                "branch_id": branch,
                "gender": "female" if female else "male",
                "birth_year": day.year - w.rng.randint(19, 64),
                "rural": w.rng.random() < bh.rural_share(index),
                "registered_on": day.isoformat(),
            },
        )
        w.emit(
            "spm.poverty.assessed.v1",
            when + timedelta(minutes=w.rng.randint(10, 120)),
            {
                "client_id": client.id,
                "tool": "ppi-ke-2020",
                "poverty_line": "national",  # the primary line (INDICATORS_POVERTY_LINE default)
                "likelihood": str(bh.poverty_likelihood(w.rng, d)),
                "assessed_on": day.isoformat(),
            },
        )
        return client

    def _opening_book(self, start: date) -> None:
        cfg, w = self.config, self.w
        branches = cfg.branch_list
        for i in range(cfg.clients):
            index = i % len(branches)
            registered = start - timedelta(days=w.rng.randint(20, 1100))
            client = self._register(branches[index], index, registered)
            term_days = 30 * max(p.term_months for p in cfg.product_list)
            disbursed = start - timedelta(days=w.rng.randint(1, term_days - 40))
            if disbursed < registered + timedelta(days=3):
                disbursed = min(registered + timedelta(days=3), start - timedelta(days=1))
            client.cycle = (disbursed - registered).days // 330
            self.loans.disburse(client, disbursed, opening_start=start)

    def _onboard(self, branch: str, index: int, day: date) -> None:
        w = self.w
        rate = max(w.active_count[branch], 100) * self.config.new_clients_per_1k_per_day / 1000
        if day.weekday() >= 5:
            rate *= WEEKEND_FACTOR
        for _ in range(bh.poisson(w.rng, rate)):
            client = self._register(branch, index, day)
            if w.rng.random() < 0.95:  # a few never borrow
                w.later(day + timedelta(days=w.rng.randint(2, 10)),
                        partial(self.loans.disburse, client))  # fmt: skip

    # --- complaints ------------------------------------------------------------------------

    def _complaints(self, branch: str, day: date) -> None:
        w = self.w
        d = self.config.drift(day, branch)
        rate = w.active_count[branch] * self.config.complaints_per_1k_per_day / 1000 * (1 + 2 * d)
        for _ in range(bh.poisson(w.rng, rate)):
            opened = w.factory.at(day, w.seconds(8, 18))
            complaint_id = w.next_id("complaint", "CASE-{:08d}")
            member = w.rng.choice(w.branch_clients[branch]) if w.branch_clients[branch] else None
            w.emit(
                "spm.complaint.opened.v1",
                opened,
                {
                    "complaint_id": complaint_id,
                    "client_id": member.id if member and w.rng.random() < 0.9 else None,
                    "branch_id": branch,
                    "channel": bh.weighted(w.rng, bh.CHANNELS),
                    "category": bh.weighted(w.rng, bh.complaint_categories(d)),
                    "severity": w.rng.choice(("low", "medium", "medium", "high")),
                    "opened_at": opened.isoformat(),
                },
            )
            days = bh.resolution_days(w.rng, d)
            if days is None:
                continue
            resolved = opened + timedelta(days=days)
            outcome = bh.weighted(w.rng, bh.OUTCOMES)
            w.later(resolved.date(), partial(self._resolve, complaint_id, resolved, outcome))

    def _resolve(self, complaint_id: str, resolved: datetime, outcome: str, day: date) -> None:
        self.w.emit(
            "spm.complaint.resolved.v1",
            resolved,
            {"complaint_id": complaint_id, "resolved_at": resolved.isoformat(), "outcome": outcome},
        )


def _officers_by_branch(branches: list[str], officers: int) -> dict[str, list[str]]:
    """Officers ``staff:1..N`` dealt round-robin to branches; with fewer officers than branches,
    some branches share one."""
    out: dict[str, list[str]] = {b: [] for b in branches}
    for i in range(officers):
        out[branches[i % len(branches)]].append(f"staff:{i + 1}")
    for n, branch in enumerate(branches):
        out[branch] = out[branch] or [f"staff:{n % officers + 1}"]
    return out


def simulate(config: SimConfig) -> Iterator[SimDay]:
    """The simulated days of ``config`` (deterministic for its seed)."""
    return Simulation(config).days()


def simulate_days(config: SimConfig) -> Iterator[list[dict[str, Any]]]:
    """Each simulated day's input events, in event-time order (the lead's entry point)."""
    for sim_day in Simulation(config).days():
        yield sim_day.events
