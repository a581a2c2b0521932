"""What a simulated MFI looks like: size, dates, scenario. Same config + seed = same events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

DEFAULT_START = date(2025, 11, 1)
_TOWNS = ("NAI", "MSA", "KSM", "NKR", "ELD", "THK", "MRU", "KTL", "GAR", "KIT", "NYR", "MCH")


class Scenario(StrEnum):
    baseline = "baseline"
    """Every branch healthy: targets of the sample strategy hold."""
    drift = "drift"
    """One branch drifts (loan sizes, DSTI breaches, then PAR30; fewer women; complaint
    backlog) while the others, the control branch among them, stay healthy."""


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    term_months: int
    base_amount: int
    """Typical first-cycle amount in the institution's currency."""
    monthly_rate: str
    """Flat interest per month, as a decimal string."""


PRODUCTS: tuple[Product, ...] = (
    Product("GRP-BIASHARA-12M", 12, 30_000, "0.015"),
    Product("IND-SME-12M", 12, 60_000, "0.017"),
    Product("AGRI-6M", 6, 20_000, "0.014"),
    Product("EDU-6M", 6, 15_000, "0.012"),
    Product("HOUSING-24M", 24, 90_000, "0.013"),
)


def branch_ids(count: int) -> list[str]:
    """``BR-NAI``, ``BR-MSA``, …; past the named towns ``BR-X13``, ``BR-X14``, …"""
    return [f"BR-{_TOWNS[i]}" if i < len(_TOWNS) else f"BR-X{i + 1}" for i in range(count)]


@dataclass(frozen=True, slots=True)
class SimConfig:
    """A synthetic MFI. The defaults end before late 2026, so ingest accepts every date."""

    seed: int = 42
    start: date = DEFAULT_START
    days: int = 365
    branches: int = 4
    products: int = 3
    clients: int = 1200
    """Clients of the opening book (spread over the branches), each with a current loan."""
    officers: int = 12
    scenario: Scenario = Scenario.baseline
    drift_branch: str | None = None
    """Default: the second branch (BR-MSA)."""
    control_branch: str | None = None
    """Default: the first branch (BR-NAI); it never drifts."""
    drift_start_day: int | None = None
    """Day the drift begins (default: a sixth into the run)."""
    drift_ramp_days: int | None = None
    """Days from the drift's start to full strength (default: half the run)."""
    source: str = "sim:mfi"
    currency: str = "KES"
    utc_offset_hours: int = 3
    new_clients_per_1k_per_day: float = 1.2
    complaints_per_1k_per_day: float = 0.25

    def __post_init__(self) -> None:
        if self.branches < 1 or self.officers < 1 or self.clients < 0 or self.days < 1:
            raise ValueError("branches, officers and days must be >= 1, clients >= 0")
        if not 1 <= self.products <= len(PRODUCTS):
            raise ValueError(f"products must be between 1 and {len(PRODUCTS)}")
        if self.scenario == Scenario.drift:
            if self.branches < 2:
                raise ValueError("the drift scenario needs at least two branches")
            if self.drift_branch_id == self.control_branch_id:
                raise ValueError("the drift and control branches must differ")
            for name in (self.drift_branch_id, self.control_branch_id):
                if name not in self.branch_list:
                    raise ValueError(f"unknown branch {name}; branches are {self.branch_list}")

    @property
    def branch_list(self) -> list[str]:
        return branch_ids(self.branches)

    @property
    def product_list(self) -> tuple[Product, ...]:
        return PRODUCTS[: self.products]

    @property
    def drift_branch_id(self) -> str:
        return self.drift_branch or self.branch_list[min(1, self.branches - 1)]

    @property
    def control_branch_id(self) -> str:
        return self.control_branch or self.branch_list[0]

    @property
    def end(self) -> date:
        """The last simulated day."""
        return self.start + timedelta(days=self.days - 1)

    def drift(self, day: date, branch: str) -> float:
        """Drift strength 0..1 of ``branch`` on ``day``: 0 before the start, ramping to 1."""
        if self.scenario != Scenario.drift or branch != self.drift_branch_id:
            return 0.0
        begin = self.drift_start_day if self.drift_start_day is not None else self.days // 6
        ramp = self.drift_ramp_days if self.drift_ramp_days is not None else max(self.days // 2, 1)
        elapsed = (day - self.start).days - begin
        return min(max(elapsed / ramp, 0.0), 1.0) if ramp > 0 else float(elapsed >= 0)
