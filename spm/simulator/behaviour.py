"""How clients, loans and complaints behave, and how the drift bends it.

Every draw takes the simulation's one ``random.Random`` and a drift strength ``d`` (0 = healthy,
1 = fully drifted), so healthy branches and the drifting one share one model. Shares a target
watches closely (women among new clients) use a low-discrepancy sequence instead of coin flips:
a healthy branch then stays near its share in every window instead of wandering across a warning
line by chance, which would make the control branch a poor control.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal

from spm.simulator.config import Product
from spm.simulator.events import CENTS

GOLDEN = 0.6180339887498949
DSTI_CAP = Decimal("0.45")
"""Credit policy of a healthy branch: instalment at most 45 % of household income."""
DSTI_LIMIT = Decimal("0.5")
ROUND_TO = Decimal(500)

VOLUNTARY_REASONS = (
    ("NO_NEED", 30),
    ("RELOCATED", 15),
    ("BETTER_OFFER", 15),
    ("LOAN_TOO_SMALL", 10),
    ("DISSATISFIED", 10),
    ("BUSINESS_CLOSED", 12),
    ("FAMILY_REASONS", 8),
)
INVOLUNTARY_REASONS = (("DEFAULT", 85), ("FRAUD", 5), ("GROUP_EXCLUSION", 10))
CHANNELS = (("hotline", 35), ("branch", 30), ("sms", 15), ("email", 5), ("agent", 15))
OUTCOMES = (("upheld", 45), ("partially_upheld", 20), ("rejected", 30), ("withdrawn", 5))
CONDUCT = ("staff_misconduct", "coercive_collection", "discrimination", "privacy", "hidden_fees")


def weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; fine for the small daily rates used here."""
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def is_female(sequence_no: int, offset: float, d: float) -> bool:
    """Women are 75 % of new clients in a healthy branch, falling to 35 % under full drift."""
    share = 0.75 - 0.40 * d
    return (sequence_no * GOLDEN + offset) % 1.0 < share


def rural_share(branch_index: int) -> float:
    return 0.12 if branch_index == 0 else 0.55


def poverty_likelihood(rng: random.Random, d: float) -> Decimal:
    """PPI likelihood below the line; drifting branches court richer clients."""
    value = rng.betavariate(5.0, 5.0 + 3.0 * d)
    return Decimal(str(round(value, 4)))


def complaint_categories(d: float) -> tuple[tuple[str, float], ...]:
    return (
        ("service_quality", 30),
        ("loan_delay", 15),
        ("product_terms", 14),
        ("fees", 10),
        ("staff_attitude", 9),
        ("other", 8),
        ("hidden_fees", 4),
        ("staff_misconduct", 3 + 6 * d),
        ("coercive_collection", 2 + 14 * d),
        ("privacy", 2),
        ("discrimination", 1),
    )


def resolution_days(rng: random.Random, d: float) -> float | None:
    """Days to resolve, or None (still open at the end). Healthy: always inside the 30-day SLA."""
    if d > 0 and rng.random() < 0.25 * d:
        return None
    base = min(rng.lognormvariate(math.log(5.0), 0.7), 26.0)
    return base * (1.0 + 7.0 * d) if d > 0 else base


@dataclass(frozen=True, slots=True)
class LoanTerms:
    amount: Decimal
    instalment: Decimal
    income: Decimal
    other_lenders: int
    dsti_breach: bool


def _instalment(amount: Decimal, product: Product) -> Decimal:
    rate = Decimal(product.monthly_rate)
    return (amount * (1 + rate * product.term_months) / product.term_months).quantize(CENTS)


def loan_terms(rng: random.Random, product: Product, cycle: int, d: float) -> LoanTerms:
    """Amount, instalment and income: capped at the DSTI policy unless the drift breaks it."""
    growth = 1.0 + 0.2 * min(cycle - 1, 6)
    raw = product.base_amount * growth * rng.lognormvariate(0.0, 0.25) * (1.0 + 0.8 * d)
    amount = max(Decimal(5000), (Decimal(raw) / ROUND_TO).to_integral_value() * ROUND_TO)
    income = Decimal(round(28_000 * (1 + 0.08 * min(cycle - 1, 6)) * rng.lognormvariate(0, 0.35)))
    income = max(income, Decimal(8000))
    breach = d > 0 and rng.random() < 0.5 * d
    instalment = _instalment(amount, product)
    if breach:
        if instalment / income <= DSTI_LIMIT:
            ratio = Decimal(str(round(rng.uniform(0.55, 0.9), 3)))
            income = (instalment / ratio).quantize(Decimal(1), rounding=ROUND_DOWN)
    elif instalment > income * DSTI_CAP:
        rate = Decimal(product.monthly_rate)
        fit = income * DSTI_CAP * product.term_months / (1 + rate * product.term_months)
        amount = max(Decimal(5000), (fit / ROUND_TO).to_integral_value(ROUND_DOWN) * ROUND_TO)
        instalment = _instalment(amount, product)
        if instalment > income * DSTI_CAP:
            income = (instalment / DSTI_CAP).quantize(Decimal(1)) + 1
    lenders_table = (("0", 62.0), ("1", 26.0), ("2", 11.5), ("3", 0.4 + 10 * d), ("4", 0.1 + 5 * d))
    return LoanTerms(
        amount, instalment, income, int(weighted(rng, lenders_table)), instalment / income > 0.5
    )


def default_probability(d: float, dsti_breach: bool) -> float:
    return 0.012 + 0.2 * d + (0.15 if dsti_breach else 0.0)


def late_delay(rng: random.Random, d: float) -> int:
    """Days an instalment is paid late (0 = on time); healthy delays stay under 30 days."""
    if rng.random() >= 0.07 + 0.2 * d:
        return 0
    return rng.randint(1, 12 + int(40 * d))


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    days_in = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31,
               30, 31, 31, 30, 31, 30, 31][month - 1]  # fmt: skip
    return date(year, month, min(day.day, days_in))
