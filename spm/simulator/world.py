"""The simulation's shared state: clock, randomness, the agenda of future actions, the out-tray."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from spm.simulator.config import Product, SimConfig
from spm.simulator.events import EventFactory

Action = Callable[[date], None]


@dataclass(slots=True)
class Client:
    id: str
    branch: str
    officer: str
    active: bool = True
    cycle: int = 0


@dataclass(slots=True)
class Loan:
    id: str
    client: Client
    product: Product
    amount: Decimal
    principal: list[Decimal]
    interest: Decimal
    due: list[date]
    outstanding: Decimal
    paid: int = 0
    unpaid: set[int] = field(default_factory=set)
    """Instalments past their due date and not paid."""
    settled: set[int] = field(default_factory=set)
    """Instalments paid."""
    ended: bool = False
    cured: bool = False
    """Its write-off was undone: the client pays again, on time."""


class World:
    """What every part of the model reads and writes; one per simulation run."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - reproducible, not secret
        # Which loans get corrected (undone and redone) draws from its own stream, so the rest
        # of the institution is drawn as it would be without corrections.
        self.corrections = random.Random(f"{config.seed}:corrections")  # noqa: S311
        self.factory = EventFactory(config.seed, config.source, config.utc_offset_hours)
        self.agenda: defaultdict[date, list[Action]] = defaultdict(list)
        self.tray: list[tuple[datetime, int, dict[str, Any]]] = []
        self.counters: defaultdict[str, int] = defaultdict(int)
        self.clients: dict[str, Client] = {}
        self.branch_clients: dict[str, list[Client]] = {b: [] for b in config.branch_list}
        self.active_count: dict[str, int] = dict.fromkeys(config.branch_list, 0)

    def next_id(self, kind: str, fmt: str) -> str:
        self.counters[kind] += 1
        return fmt.format(self.counters[kind])

    def later(self, day: date, action: Action) -> None:
        """Run ``action`` on ``day`` (actions of a day run in the order they were planned)."""
        self.agenda[day].append(action)

    def emit(self, type_: str, when: datetime, data: dict[str, Any]) -> None:
        event = self.factory.event(type_, when, data)
        self.tray.append((when, len(self.tray), event))

    def drain(self) -> list[dict[str, Any]]:
        """The day's events in event-time order."""
        events = [event for _, _, event in sorted(self.tray, key=lambda item: item[:2])]
        self.tray.clear()
        return events

    def seconds(self, first_hour: int, last_hour: int) -> int:
        """A random moment between two hours of the day, in seconds after midnight."""
        return self.rng.randint(first_hour * 3600, last_hour * 3600 - 1)
