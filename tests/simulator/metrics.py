"""Per-branch figures computed straight from simulated input events (a small, independent oracle
for the scenario tests; the real numbers come from the indicator service)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

SLA_DAYS = 30


@dataclass
class BranchFigures:
    """Figures of one branch over one period (window) of days."""

    disbursements: int = 0
    dsti_breaches: int = 0
    first_cycle: int = 0
    first_cycle_women: int = 0
    amount_total: Decimal = Decimal(0)
    open_past_sla: int = 0
    par30: Decimal = Decimal(0)

    @property
    def dsti_share(self) -> float:
        return self.dsti_breaches / self.disbursements if self.disbursements else 0.0

    @property
    def women_share(self) -> float:
        return self.first_cycle_women / self.first_cycle if self.first_cycle else 0.0

    @property
    def avg_amount(self) -> Decimal:
        return self.amount_total / self.disbursements if self.disbursements else Decimal(0)


@dataclass
class Ledger:
    """Replays events; asks questions about windows and days."""

    gender: dict[str, str] = field(default_factory=dict)
    disbursals: list[tuple[date, str, dict[str, Any]]] = field(default_factory=list)
    reversed: set[str] = field(default_factory=set)
    """Transaction ids reversed: repayments, and (contract v1.1) disbursals and write-offs."""
    repaid: defaultdict[str, list[tuple[date, Decimal, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    dpd_reports: defaultdict[str, list[tuple[date, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    endings: defaultdict[str, list[tuple[date, str | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    """Closures and write-offs per loan: (day, transaction id; None for a closure)."""
    complaints: dict[str, tuple[str, date]] = field(default_factory=dict)
    resolved: dict[str, date] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        data, kind = event["data"], event["type"]
        if kind == "spm.client.registered.v1":
            self.gender[data["client_id"]] = data["gender"]
        elif kind == "spm.loan.disbursed.v1":
            self.disbursals.append(
                (date.fromisoformat(data["disbursed_on"]), data["branch_id"], data)
            )
        elif kind == "spm.loan.repayment.v1":
            self.repaid[data["loan_id"]].append(
                (
                    date.fromisoformat(data["value_date"]),
                    Decimal(data["principal_paid"]),
                    data["transaction_id"],
                )
            )
        elif kind == "spm.loan.transaction_reversed.v1":
            self.reversed.add(data["transaction_id"])
        elif kind == "spm.loan.delinquency.v1":
            self.dpd_reports[data["loan_id"]].append(
                (date.fromisoformat(data["as_of"]), data["days_past_due"])
            )
        elif kind == "spm.loan.closed.v1":
            self.endings[data["loan_id"]].append((date.fromisoformat(data["closed_on"]), None))
        elif kind == "spm.loan.written_off.v1":
            day = date.fromisoformat(data["written_off_on"])
            self.endings[data["loan_id"]].append((day, data.get("transaction_id")))
        elif kind == "spm.complaint.opened.v1":
            opened = datetime.fromisoformat(data["opened_at"]).date()
            self.complaints[data["complaint_id"]] = (data["branch_id"], opened)
        elif kind == "spm.complaint.resolved.v1":
            self.resolved[data["complaint_id"]] = datetime.fromisoformat(data["resolved_at"]).date()

    @property
    def disbursed(self) -> list[tuple[date, str, dict[str, Any]]]:
        """Disbursals not cancelled by a reversal of their transaction."""
        return [d for d in self.disbursals if d[2].get("transaction_id") not in self.reversed]

    @property
    def loans(self) -> dict[str, dict[str, Any]]:
        """Each loan's disbursal in force: its first one not cancelled."""
        out: dict[str, dict[str, Any]] = {}
        for _, _, data in self.disbursed:
            out.setdefault(data["loan_id"], data)
        return out

    def ended(self, loan_id: str) -> date | None:
        days = [d for d, txn in self.endings[loan_id] if txn is None or txn not in self.reversed]
        return min(days, default=None)

    def figures(self, branch: str, first: date, last: date) -> BranchFigures:
        out = BranchFigures()
        for day, loan_branch, data in self.disbursed:
            if loan_branch != branch or not first <= day <= last:
                continue
            out.disbursements += 1
            out.amount_total += Decimal(data["amount"])
            ratio = Decimal(data["instalment_monthly"]) / Decimal(data["household_income_monthly"])
            out.dsti_breaches += ratio > Decimal("0.5")
            if data.get("loan_cycle") == 1:
                out.first_cycle += 1
                out.first_cycle_women += self.gender.get(data["client_id"]) == "female"
        for cid, (c_branch, opened) in self.complaints.items():
            resolved = self.resolved.get(cid)
            open_on_last = resolved is None or resolved > last
            if c_branch == branch and open_on_last and (last - opened).days > SLA_DAYS:
                out.open_past_sla += 1
        out.par30 = self.par30(branch, last)
        return out

    def par30(self, branch: str, day: date) -> Decimal:
        portfolio = at_risk = Decimal(0)
        for loan_id, data in self.loans.items():
            disbursed = date.fromisoformat(data["disbursed_on"])
            ended = self.ended(loan_id) or day + timedelta(days=1)
            if data["branch_id"] != branch or disbursed > day or ended <= day:
                continue
            paid = sum(
                (p for d, p, t in self.repaid[loan_id] if d <= day and t not in self.reversed),
                Decimal(0),
            )
            outstanding = max(Decimal(data["amount"]) - paid, Decimal(0))
            portfolio += outstanding
            reports = [(d, n) for d, n in self.dpd_reports[loan_id] if d <= day]
            if reports:
                as_of, dpd = max(reports)
                dpd = dpd + (day - as_of).days if dpd > 0 else 0
                if dpd > 30:
                    at_risk += outstanding
        return at_risk / portfolio if portfolio else Decimal(0)
