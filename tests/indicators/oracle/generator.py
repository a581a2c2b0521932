"""A deterministic, realistic stream of canonical events for checking the indicator engine.

It simulates an MFI day by day: clients register (some re-register with other attributes, some
never register but borrow), are assessed for poverty, take loan cycles that are repaid, run into
arrears, get rescheduled, written off or closed; they complain, leave with or without a reason,
die, or just stop borrowing (inferred drop-outs, some of them cancelled by a much later loan).

The *arrival* order is what the generator yields: most events arrive on their own day in a
shuffled order, some a few days later, a few months later (late events restate history); some
reversals arrive before the repayment they reverse, some complaint resolutions before the
opening, and a few events are sent twice under the same (source, id) with different content.

Everything comes from ``random.Random`` seeded per client, so the same config always gives the
same stream, and memory stays proportional to the clients alive at a time (a 1,000,000-event
stream never sits in memory).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from contracts.envelope import CanonicalEvent
from contracts.registry import event_type

FINERACT = "fineract:default"
LEGACY = "mis:legacy"
CRM = "crm:salesforce"

T_REG = "spm.client.registered.v1"
T_EXIT = "spm.client.exited.v1"
T_POV = "spm.poverty.assessed.v1"
T_DISB = "spm.loan.disbursed.v1"
T_REPAY = "spm.loan.repayment.v1"
T_REV = "spm.loan.transaction_reversed.v1"
T_DELQ = "spm.loan.delinquency.v1"
T_WOFF = "spm.loan.written_off.v1"
T_CLOSE = "spm.loan.closed.v1"
T_COPEN = "spm.complaint.opened.v1"
T_CRES = "spm.complaint.resolved.v1"

EXIT_REASONS = ("moved_away", "over_indebted", "business_closed", "dissatisfied", "other_lender")
COMPLAINT_CATEGORIES = (
    "service_quality",
    "service_quality",
    "fees_charges",
    "loan_terms",
    "delays",
    "staff_misconduct",
    "coercive_collection",
    "discrimination",
    "privacy",
    "hidden_fees",
)
EAT = timezone(timedelta(hours=3))
CENT = Decimal("0.01")

# Rough number of events one client produces over the simulated period; used only to choose how
# many clients to create per day for a requested stream size.
_EVENTS_PER_CLIENT = 19.0


@dataclass(frozen=True)
class GenConfig:
    seed: int = 20240601
    n_events: int = 50_000
    start: date = date(2023, 1, 2)
    days: int = 790
    """Simulated business days (registrations happen in the first ~75 % of them)."""
    branches: tuple[str, ...] = ("NAI01", "NAI02", "KSM01", "MSA01", "ELD01", "NKR01")
    products: tuple[str, ...] = ("GRP_IGL", "IND_SME", "AGRI_SEASON", "EMERG")
    currency: str = "KES"
    late_share: float = 0.006
    duplicate_share: float = 0.01
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)


@dataclass(slots=True)
class _Natural:
    """An event as the simulation creates it: type, source, id, its business day, payload."""

    day: int
    type: str
    source: str
    id: str
    data: dict[str, Any]
    min_delay: int = 0
    """Force the arrival at least this many days after ``day`` (late events)."""
    arrive_after: _Natural | None = None
    """Force arrival strictly after another event (reversal before repayment, etc.)."""
    arrival: tuple[int, float, int] | None = None


def pid(seed: int, index: int, kind: str = "client") -> str:
    return hashlib.sha256(f"spm-oracle:{seed}:{kind}:{index}".encode()).hexdigest()


def _d(ordinal: int) -> date:
    return date.fromordinal(ordinal)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


class _ClientLife:
    """Creates every natural event of one client, sorted by business day."""

    def __init__(self, cfg: GenConfig, index: int, reg_day: int, last_day: int) -> None:
        self.cfg = cfg
        self.index = index
        self.rng = random.Random(f"{cfg.seed}:{index}")
        self.reg_day = reg_day
        self.last_day = last_day
        self.pid = pid(cfg.seed, index)
        self.events: list[_Natural] = []
        self.n = 0
        rng = self.rng
        self.source = LEGACY if rng.random() < 0.05 else FINERACT
        self.branch = rng.choice(cfg.branches)
        r = rng.random()
        self.gender = (
            "female" if r < 0.6 else "male" if r < 0.93 else "other" if r < 0.96 else "unknown"
        )
        r = rng.random()
        self.rural: bool | None = True if r < 0.5 else False if r < 0.9 else None
        self.loan_seq = 0

    def _eid(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.index:07d}-{self.n:03d}"

    def _add(
        self, day: int, type_: str, data: dict[str, Any], source: str | None = None
    ) -> _Natural:
        ev = _Natural(day, type_, source or self.source, self._eid(type_.split(".")[2]), data)
        self.events.append(ev)
        return ev

    def _loan_id(self) -> str:
        self.loan_seq += 1
        # legacy loans reuse the id pattern of the previous client: same loan_id, other source
        index = self.index - 1 if self.source == LEGACY else self.index
        return f"L{index:07d}-{self.loan_seq}"

    # --- the life -------------------------------------------------------------------------

    def build(self) -> list[_Natural]:
        rng = self.rng
        registered = rng.random() >= 0.04
        day = self.reg_day
        if registered:
            self._register(day)
        if rng.random() < 0.85:
            self._poverty(day + rng.randint(0, 10))
        if rng.random() < 0.3:
            self._poverty(day + rng.randint(300, 420))
        end_of_life = self._loans(day) if rng.random() < 0.9 else day
        self._exits(end_of_life, registered)
        n_complaints = sum(1 for _ in range(3) if rng.random() < 0.09)
        for _ in range(n_complaints):
            self._complaint(rng.randint(day, min(self.last_day, max(day, end_of_life) + 60)))
        self.events = [e for e in self.events if e.day <= self.last_day]
        self.events.sort(key=lambda e: e.day)
        return self.events

    def _register(self, day: int) -> None:
        rng = self.rng
        reg = self._add(day, T_REG, self._reg_data(day))
        if rng.random() < 0.02:
            reg.min_delay = rng.randint(30, 300)  # registration backfilled months later
        r = rng.random()
        if r < 0.08:  # re-registration later, with changed attributes
            later = day + rng.randint(60, 400)
            self._mutate_attributes()
            self._add(later, T_REG, self._reg_data(later))
        elif r < 0.10:  # a backdated correction arriving later: earliest registered_on moves
            earlier = day - rng.randint(5, 200)
            self._mutate_attributes()
            ev = self._add(day, T_REG, self._reg_data(earlier))
            ev.min_delay = rng.randint(1, 60)
        elif r < 0.11:  # same registered_on, other attributes: the last received wins
            self._mutate_attributes()
            ev = self._add(day, T_REG, self._reg_data(day))
            ev.arrive_after = reg

    def _mutate_attributes(self) -> None:
        rng = self.rng
        what = rng.choice(("branch", "gender", "rural", "all"))
        if what in ("branch", "all"):
            self.branch = rng.choice(self.cfg.branches)
        if what in ("gender", "all"):
            self.gender = rng.choice(("female", "male", "other", "unknown"))
        if what in ("rural", "all"):
            self.rural = rng.choice((True, False, None))

    def _reg_data(self, day: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "client_pid": self.pid,
            "branch_id": self.branch,
            "gender": self.gender,
            "registered_on": _d(day),
        }
        if self.rural is not None:
            data["rural"] = self.rural
        if self.rng.random() < 0.9:
            data["birth_year"] = self.rng.randint(1950, 2004)
        return data

    def _poverty(self, day: int) -> None:
        rng = self.rng
        likelihood = Decimal(rng.betavariate(2, 3)).quantize(Decimal("0.0001"))
        self._add(
            day,
            T_POV,
            {
                "client_pid": self.pid,
                "tool": "PPI_KE_2018",
                "poverty_line": rng.choice(("national", "$2.15_2017ppp")),
                "likelihood": likelihood,
                "assessed_on": _d(day),
            },
        )

    def _loans(self, reg_day: int) -> int:
        """All loan cycles of the client; returns the day the client's last loan ended (or its
        last activity)."""
        rng = self.rng
        day = reg_day + rng.randint(0, 30)
        cycle = 1
        last_end = day
        while day <= self.last_day:
            end, outcome = self._loan(day, cycle)
            last_end = max(last_end, end)
            if outcome == "rescheduled":
                day = end  # refinanced the same day, same cycle
                continue
            if outcome in ("defaulted", "open"):
                break
            r = rng.random()
            if r < 0.62:
                day = end + rng.randint(0, 45)
            elif r < 0.72:
                day = end + rng.randint(100, 330)  # cancels the inferred exit
            else:
                break
            cycle += 1
        return last_end

    def _loan(self, day: int, cycle: int) -> tuple[int, str]:
        """One loan; returns (end day, outcome)."""
        cfg, rng = self.cfg, self.rng
        loan_id = self._loan_id()
        product = rng.choice(cfg.products)
        branch = self.branch if rng.random() < 0.93 else rng.choice(cfg.branches)
        term = rng.choice((3, 4, 6, 6, 9, 12, 12))
        amount = _money(Decimal(rng.randint(50, 1500) * 10) * (1 + Decimal(cycle - 1) / 4))
        instalment = _money(amount * Decimal("1.18") / term)
        data: dict[str, Any] = {
            "loan_id": loan_id,
            "client_pid": self.pid,
            "branch_id": branch,
            "product_id": product,
            "amount": amount,
            "currency": cfg.currency,
            "term_months": term,
            "disbursed_on": _d(day),
        }
        if rng.random() < 0.95:
            data["loan_cycle"] = cycle
        if rng.random() < 0.2:
            data["officer_pid"] = pid(cfg.seed, rng.randint(1, 40), "officer")
        r = rng.random()
        if r < 0.85:
            data["instalment_monthly"] = instalment
            income = instalment * Decimal(rng.choice((1.5, 1.9, 2, 2, 2.5, 3, 4, 6)))
            if rng.random() < 0.04:
                income = instalment * 2  # exactly at the limit: not a breach
            elif rng.random() < 0.03:
                income = instalment * 2 - CENT  # one cent short of the limit: a breach
            data["household_income_monthly"] = _money(income)
        elif r < 0.9:
            data["instalment_monthly"] = instalment
            data["household_income_monthly"] = Decimal("0")
        elif r < 0.95:
            data["household_income_monthly"] = _money(instalment * 3)
        if rng.random() < 0.8:
            data["other_active_lenders"] = rng.choice((0, 0, 0, 1, 1, 2, 2, 3, 4, 6))
        if rng.random() < 0.75:  # sources that can undo disbursals send their transaction id
            data["transaction_id"] = self._tx("D")
        r = rng.random()
        if r < 0.06 and "transaction_id" in data:
            return self._undone_disbursal(data, day, amount, term, redo=r < 0.05)
        disb = self._add(day, T_DISB, data)
        if rng.random() < 0.004:  # the same loan disbursed twice (another event id): ignored
            again = dict(data, amount=amount * 2)
            second = self._add(day + rng.randint(0, 20), T_DISB, again)
            second.arrive_after = disb
        return self._schedule(loan_id, day, amount, term)

    def _tx(self, prefix: str) -> str:
        """A transaction id unique within the client's loans (so within each loan)."""
        return f"{prefix}{self.index:07d}-{self.n + 1:04d}"

    def _reverse(self, loan_id: str, tx: str, day: int) -> _Natural:
        return self._add(
            day,
            T_REV,
            {
                "loan_id": loan_id,
                "client_pid": self.pid,
                "transaction_id": tx,
                "reversed_on": _d(day),
            },
        )

    def _undone_disbursal(
        self, data: dict[str, Any], day: int, amount: Decimal, term: int, *, redo: bool
    ) -> tuple[int, str]:
        """A disbursal undone in core banking (docs/indicators.md, corrections): a wrong one, its
        reversal (before the first repayment, or after a few), and usually the disbursal done
        again with a new transaction id; the reversal sometimes overtakes the disbursal."""
        rng = self.rng
        loan_id = data["loan_id"]
        wrong_day = day - rng.randint(0, 5)
        wrong_amount = _money(amount * Decimal(rng.choice(("0.5", "1.5", "2"))))
        wrong = self._add(
            wrong_day, T_DISB, dict(data, amount=wrong_amount, disbursed_on=_d(wrong_day))
        )
        if not redo:  # undone for good: the loan never exists (its events are kept)
            undo_day = day + rng.randint(0, 40)
            if rng.random() < 0.5:
                self._repay(loan_id, day + rng.randint(0, 30), _money(wrong_amount / 4))
            reversal = self._reverse(loan_id, data["transaction_id"], undo_day)
            if rng.random() < 0.3:  # and written off although it never existed
                self._write_off(loan_id, undo_day + rng.randint(1, 30), wrong_amount, tx=True)
            return undo_day, "closed"
        after_repayments = rng.random() < 0.4
        undo_day = day + (rng.randint(31, 75) if after_repayments else rng.randint(0, 3))
        reversal = self._reverse(loan_id, data["transaction_id"], undo_day)
        if rng.random() < 0.3:  # the reversal overtakes the disbursal it cancels
            wrong.min_delay = undo_day - wrong_day + rng.randint(0, 20)
            wrong.arrive_after = reversal
        redo_data = dict(data, transaction_id=self._tx("D"))
        again = self._add(day, T_DISB, redo_data)
        again.min_delay = undo_day - day
        again.arrive_after = reversal
        return self._schedule(loan_id, day, amount, term)

    def _schedule(self, loan_id: str, day: int, amount: Decimal, term: int) -> tuple[int, str]:
        rng = self.rng
        principal = _money(amount / term)
        profile = rng.random()
        if profile < 0.70:
            kind = "good"
        elif profile < 0.83:
            kind = "late"
        elif profile < 0.92:
            kind = "default"
        elif profile < 0.95:
            kind = "rescheduled"
        elif profile < 0.97:
            kind = "prepaid"
        else:
            kind = "other"
        paid = Decimal(0)
        due_day = day
        slip = 0  # days the client is behind
        stop_at = rng.randint(1, max(1, term - 1)) if kind in ("default", "rescheduled") else term
        if kind == "other":
            stop_at = rng.randint(1, term)
        monthly_reports = rng.random() < 0.35
        last = day
        for k in range(1, term + 1):
            due_day = day + 30 * k
            if kind == "late" and rng.random() < 0.3:
                slip = min(slip + rng.randint(10, 45), 120)
            elif slip and rng.random() < 0.5:
                slip = max(0, slip - rng.randint(10, 60))
            if k > stop_at:
                break
            pay_day = due_day + slip
            if kind == "prepaid" and k == max(1, term // 2):
                amount_now = amount - paid
                self._repay(loan_id, pay_day, amount_now)
                paid = amount
                last = pay_day
                break
            share = amount - paid if k == term else principal
            self._repay(loan_id, pay_day, share)
            paid += share
            last = pay_day
            if monthly_reports or slip:
                self._delinquency(loan_id, due_day + 15, max(0, slip - 15) if slip else 0)
            if kind == "good" and rng.random() < 0.04:
                # a short lateness reported, then cured
                self._delinquency(loan_id, due_day + 5, rng.randint(1, 25))
                self._delinquency(loan_id, due_day + 12, 0)
        outstanding = amount - paid
        if kind == "default":
            first_missed = day + 30 * (stop_at + 1)
            age = 0
            report_day = first_missed + rng.randint(5, 25)
            while age < 200:
                age = report_day - first_missed
                self._delinquency(loan_id, report_day, age)
                report_day += rng.choice((30, 31, 28, 61))
            woff_day = first_missed + rng.randint(180, 240)
            if rng.random() < 0.25:  # partial recovery before the write-off
                part = _money(outstanding / 3)
                self._repay(loan_id, woff_day - 20, part)
                outstanding -= part
            undoable = rng.random() < 0.6  # the source sends the write-off's transaction id
            tx = self._write_off(loan_id, woff_day, outstanding, tx=undoable)
            if not undoable:
                if rng.random() < 0.75:
                    self._close(loan_id, woff_day + rng.choice((0, 0, 3, 10)), "written_off")
                return woff_day, "defaulted"
            if rng.random() >= 0.3:
                return woff_day, "defaulted"  # (such a source sends no closure for it)
            # the write-off undone, usually after the client's inferred exit: open again
            undo_day = woff_day + rng.randint(30, 200)
            self._reverse(loan_id, tx, undo_day)
            if rng.random() < 0.5:
                self._delinquency(loan_id, undo_day + 10, undo_day + 10 - first_missed)
            if rng.random() < 0.6:  # and written off again later
                again = undo_day + rng.randint(20, 120)
                self._write_off(loan_id, again, outstanding, tx=True)
                return again, "defaulted"
            return undo_day, "open"
        if kind == "rescheduled":
            end = last + rng.randint(5, 40)
            self._close(loan_id, end, "rescheduled")
            return end, "rescheduled"
        if kind == "other":
            end = last + rng.randint(1, 30)
            self._close(loan_id, end, "other")
            return end, "closed"
        r = rng.random()
        if r < 0.04:
            return last, "open"  # fully repaid, never closed: has not ended
        end = last + (0 if r < 0.7 else rng.randint(1, 20))
        self._close(loan_id, end, "repaid")
        return end, "closed"

    def _write_off(self, loan_id: str, day: int, principal: Decimal, *, tx: bool) -> str:
        data: dict[str, Any] = {
            "loan_id": loan_id,
            "client_pid": self.pid,
            "principal_written_off": principal,
            "written_off_on": _d(day),
        }
        if tx:
            data["transaction_id"] = self._tx("W")
        self._add(day, T_WOFF, data)
        return str(data.get("transaction_id"))

    def _repay(self, loan_id: str, day: int, principal: Decimal) -> None:
        rng = self.rng
        tx = f"T{self.index:07d}-{self.n + 1:04d}"
        interest = _money(principal * Decimal("0.18"))
        data: dict[str, Any] = {
            "loan_id": loan_id,
            "client_pid": self.pid,
            "transaction_id": tx,
            "value_date": _d(day),
            "amount": principal + interest,
            "principal_paid": principal,
            "interest_paid": interest,
        }
        repayment = self._add(day, T_REPAY, data)
        r = rng.random()
        if r < 0.025 and principal > 0:
            rev_day = day + rng.randint(0, 10)
            reversal = self._add(
                rev_day,
                T_REV,
                {
                    "loan_id": loan_id,
                    "client_pid": self.pid,
                    "transaction_id": tx,
                    "reversed_on": _d(rev_day),
                },
            )
            if rng.random() < 0.35:  # the reversal overtakes the repayment it reverses
                repayment.min_delay = rev_day - day + rng.randint(1, 40)
                repayment.arrive_after = reversal
            if rng.random() < 0.7:  # corrected repayment
                self._repay_plain(loan_id, rev_day, principal)

    def _repay_plain(self, loan_id: str, day: int, principal: Decimal) -> None:
        interest = _money(principal * Decimal("0.18"))
        self._add(
            day,
            T_REPAY,
            {
                "loan_id": loan_id,
                "client_pid": self.pid,
                "transaction_id": f"T{self.index:07d}-{self.n + 1:04d}",
                "value_date": _d(day),
                "amount": principal + interest,
                "principal_paid": principal,
            },
        )

    def _delinquency(self, loan_id: str, day: int, dpd: int) -> None:
        data: dict[str, Any] = {
            "loan_id": loan_id,
            "client_pid": self.pid,
            "as_of": _d(day),
            "days_past_due": dpd,
        }
        if dpd:
            data["arrears_amount"] = _money(Decimal(dpd) * 3)
        first = self._add(day, T_DELQ, data)
        if self.rng.random() < 0.02:  # two reports for the same as_of: the last received wins
            second = self._add(day, T_DELQ, dict(data, days_past_due=dpd + 31))
            second.arrive_after = first

    def _close(self, loan_id: str, day: int, closure: str) -> None:
        self._add(
            day,
            T_CLOSE,
            {
                "loan_id": loan_id,
                "client_pid": self.pid,
                "closed_on": _d(day),
                "closure_type": closure,
            },
        )

    def _exits(self, last_loan_end: int, registered: bool) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.012:
            self._exit(rng.randint(self.reg_day, self.last_day), "deceased", "death")
        elif r < 0.04:  # leaves while a loan may still be open
            self._exit(rng.randint(self.reg_day + 30, self.reg_day + 400), "voluntary", None)
        elif r < 0.20:
            day = last_loan_end + rng.randint(0, 200)
            kind = rng.choice(("voluntary", "voluntary", "involuntary", "inactive"))
            reason = rng.choice(EXIT_REASONS) if rng.random() < 0.8 else None
            self._exit(day, kind, reason)
            if rng.random() < 0.1:  # a second exit, earlier: the earliest exited_on counts
                earlier = max(self.reg_day, day - rng.randint(1, 30))
                second = self._exit(earlier, "inactive", rng.choice(EXIT_REASONS))
                second.min_delay = rng.randint(0, 40)
        if not registered and rng.random() < 0.3:
            self._exit(last_loan_end + rng.randint(0, 60), "voluntary", "moved_away")

    def _exit(self, day: int, kind: str, reason: str | None) -> _Natural:
        data: dict[str, Any] = {"client_pid": self.pid, "exited_on": _d(day), "exit_type": kind}
        if reason is not None:
            data["reason_code"] = reason
        if self.rng.random() < 0.5:
            data["branch_id"] = self.rng.choice(self.cfg.branches)
        return self._add(day, T_EXIT, data)

    def _complaint(self, day: int) -> None:
        rng = self.rng
        cid = f"CASE-{self.index:07d}-{self.n + 1:03d}"
        tz = EAT if rng.random() < 0.2 else UTC
        opened_at = datetime.combine(_d(day), datetime.min.time(), UTC) + timedelta(
            seconds=rng.randint(0, 86399)
        )
        data: dict[str, Any] = {
            "complaint_id": cid,
            "branch_id": self.branch if rng.random() < 0.9 else rng.choice(self.cfg.branches),
            "channel": rng.choice(("phone", "branch", "sms", "hotline")),
            "category": rng.choice(COMPLAINT_CATEGORIES),
            "opened_at": opened_at.astimezone(tz),
        }
        if rng.random() < 0.9:
            data["client_pid"] = self.pid
        if rng.random() < 0.5:
            data["severity"] = rng.choice(("low", "medium", "high"))
        opened = self._add(day, T_COPEN, data, source=CRM)
        if rng.random() < 0.03:  # opened twice under another id: the first received counts
            again = dict(
                data,
                category=rng.choice(COMPLAINT_CATEGORIES),
                opened_at=opened_at - timedelta(days=3),
            )
            second = self._add(day, T_COPEN, again, source=CRM)
            second.arrive_after = opened
        if rng.random() < 0.15:
            return  # never resolved
        delay = timedelta(seconds=int(rng.expovariate(1 / 20) * 86400) + rng.randint(60, 7200))
        resolved_at = (opened_at + delay).astimezone(UTC if rng.random() < 0.8 else EAT)
        res_day = resolved_at.astimezone(UTC).date().toordinal()
        resolved = self._add(
            res_day,
            T_CRES,
            {
                "complaint_id": cid,
                "resolved_at": resolved_at,
                "outcome": rng.choice(("upheld", "rejected", "partially_upheld")),
            },
            source=CRM,
        )
        if rng.random() < 0.06:  # the resolution arrives before the opening
            opened.min_delay = res_day - day + rng.randint(1, 20)
            opened.arrive_after = resolved
        if rng.random() < 0.03:  # resolved twice: the earliest resolved_at counts
            later = resolved_at + timedelta(days=rng.randint(1, 9))
            self._add(
                later.date().toordinal(),
                T_CRES,
                {"complaint_id": cid, "resolved_at": later, "outcome": "reopened_resolved"},
                source=CRM,
            )


def _mutate_duplicate(ev: _Natural, rng: random.Random) -> dict[str, Any]:
    """Different content under the same (source, id); keys (and so partitions) stay the same."""
    data = dict(ev.data)
    if ev.type == T_REG:
        data["gender"] = "other" if data["gender"] != "other" else "male"
        data["registered_on"] = data["registered_on"] - timedelta(days=rng.randint(1, 30))
    elif ev.type == T_DISB:
        data["amount"] = data["amount"] * 2
        data["loan_cycle"] = 1
    elif ev.type == T_REPAY:
        data["principal_paid"] = data["principal_paid"] + Decimal("100.00")
    elif ev.type == T_DELQ:
        data["days_past_due"] = data["days_past_due"] + 60
    elif ev.type == T_EXIT:
        data["exit_type"] = "deceased"
    elif ev.type == T_POV:
        data["likelihood"] = Decimal("0.9999")
    elif ev.type == T_CLOSE:
        data["closed_on"] = data["closed_on"] - timedelta(days=rng.randint(1, 20))
    elif ev.type == T_WOFF:
        data["principal_written_off"] = data["principal_written_off"] + 1
    elif ev.type == T_COPEN:
        data["category"] = "privacy"
    elif ev.type == T_CRES:
        data["resolved_at"] = data["resolved_at"] + timedelta(hours=5)
    elif ev.type == T_REV:
        data["reversed_on"] = data["reversed_on"] + timedelta(days=1)
    return data


def _orphan_events(cfg: GenConfig, rng: random.Random, index: int, day: int) -> list[_Natural]:
    """Events that refer to nothing known: exits of unknown clients, repayments of unknown loans,
    a reversal of a transaction that never comes, a resolution of a complaint never opened."""
    who = pid(cfg.seed, index, "ghost")
    kind = rng.randrange(4)
    eid = f"orphan-{index:07d}"
    if kind == 0:
        data: dict[str, Any] = {
            "client_pid": who,
            "exited_on": _d(day),
            "exit_type": "voluntary",
            "reason_code": "moved_away",
        }
        return [_Natural(day, T_EXIT, FINERACT, eid, data)]
    if kind == 1:
        data = {
            "loan_id": f"GHOST-{index}",
            "client_pid": who,
            "transaction_id": f"GT{index}",
            "value_date": _d(day),
            "amount": Decimal("10.00"),
            "principal_paid": Decimal("8.00"),
        }
        return [_Natural(day, T_REPAY, FINERACT, eid, data)]
    if kind == 2:
        data = {
            "loan_id": f"GHOST-{index}",
            "client_pid": who,
            "transaction_id": f"GT{index}",
            "reversed_on": _d(day),
        }
        return [_Natural(day, T_REV, FINERACT, eid, data)]
    data = {
        "complaint_id": f"GHOST-CASE-{index}",
        "resolved_at": datetime.combine(_d(day), datetime.min.time(), UTC) + timedelta(hours=9),
        "outcome": "upheld",
    }
    return [_Natural(day, T_CRES, CRM, eid, data)]


def _natural_stream(cfg: GenConfig, rng: random.Random) -> Iterator[_Natural]:
    """Natural events in business-day order."""
    first = cfg.start.toordinal()
    last = first + cfg.days - 1
    reg_span = int(cfg.days * 0.78)
    per_day = cfg.n_events * 1.06 / (_EVENTS_PER_CLIENT * reg_span)  # cut at n_events
    pending: list[tuple[int, int, _Natural, Iterator[_Natural]]] = []
    counter = itertools.count()
    index = 0
    carry = 0.0
    for day in range(first, last + 1):
        if day - first < reg_span:
            carry += per_day * (0.6 + 0.8 * rng.random())
            while carry >= 1:
                carry -= 1
                index += 1
                it = iter(_ClientLife(cfg, index, day, last).build())
                head = next(it, None)
                if head is not None:
                    heapq.heappush(pending, (head.day, next(counter), head, it))
            if rng.random() < 0.05:
                index += 1
                yield from _orphan_events(cfg, rng, index, day)
        while pending and pending[0][0] <= day:
            _, _, ev, it = heapq.heappop(pending)
            yield ev
            nxt = next(it, None)
            if nxt is not None:
                heapq.heappush(pending, (nxt.day, next(counter), nxt, it))


def _arrivals(cfg: GenConfig) -> Iterator[_Natural]:
    """Natural events re-ordered into arrival order, with duplicates added."""
    rng = random.Random(f"{cfg.seed}:arrival")
    heap: list[tuple[tuple[int, float, int], _Natural]] = []
    seq = itertools.count()
    for ev in _natural_stream(cfg, random.Random(f"{cfg.seed}:days")):
        while heap and heap[0][0][0] < ev.day:
            yield heapq.heappop(heap)[1]
        for item in _arrive(cfg, rng, ev, seq):
            heapq.heappush(heap, item)
    while heap:
        yield heapq.heappop(heap)[1]


def _arrive(
    cfg: GenConfig, rng: random.Random, ev: _Natural, seq: itertools.count[int]
) -> list[tuple[tuple[int, float, int], _Natural]]:
    r = rng.random()
    if r < 0.88:
        delay = 0
    elif r < 0.97:
        delay = rng.randint(1, 3)
    elif r < 1 - cfg.late_share:
        delay = rng.randint(4, 30)
    else:
        delay = rng.randint(60, 400)
    delay = max(delay, ev.min_delay)
    arrival = (ev.day + delay, rng.random(), next(seq))
    if ev.arrive_after is not None and ev.arrive_after.arrival is not None:
        other = ev.arrive_after.arrival
        if arrival <= other:
            arrival = (other[0], other[1] + (1 - other[1]) * rng.random(), next(seq))
    ev.arrival = arrival
    out = [(arrival, ev)]
    if rng.random() < cfg.duplicate_share:
        twin = _Natural(ev.day, ev.type, ev.source, ev.id, _mutate_duplicate(ev, rng))
        # usually later; sometimes the altered copy is the first received
        shift = rng.randint(0, 60) if rng.random() < 0.8 else 0
        twin.arrival = (arrival[0] + shift, rng.random(), next(seq))
        out.append((twin.arrival, twin))
    return out


def corrections(events: list[CanonicalEvent]) -> Counter[str]:
    """How many undo-and-redo sequences a stream holds, by kind (what tests assert is there):
    ``disbursal_redone``, ``disbursal_undone`` (for good), ``reversal_first`` (a reversal
    received before the disbursal it cancels), ``write_off_undone``."""
    by_tx: dict[tuple[str, str, str], list[CanonicalEvent]] = defaultdict(list)
    for e in events:
        tx = getattr(e.data, "transaction_id", None)
        if tx is not None:
            by_tx[(e.source, e.data.loan_id, tx)].append(e)  # type: ignore[attr-defined]
    disbursed: dict[tuple[str, str], int] = defaultdict(int)
    for e in events:
        if e.type == T_DISB:
            disbursed[(e.source, e.data.loan_id)] += 1  # type: ignore[attr-defined]
    out: Counter[str] = Counter()
    for key, group in by_tx.items():
        types = [e.type for e in group]
        if T_REV not in types:
            continue
        if T_DISB in types:
            out["disbursal_redone" if disbursed[key[:2]] > 1 else "disbursal_undone"] += 1
            if types.index(T_REV) < types.index(T_DISB):
                out["reversal_first"] += 1
        if T_WOFF in types:
            out["write_off_undone"] += 1
    return out


def _time(day: int, n: int) -> datetime:
    return datetime.combine(_d(day), datetime.min.time(), UTC) + timedelta(seconds=n % 86400)


def generate(cfg: GenConfig) -> Iterator[CanonicalEvent]:
    """Canonical events (contract v1) in arrival order; exactly ``cfg.n_events`` of them at most
    (the stream is cut when it reaches that size)."""
    for n, ev in enumerate(_arrivals(cfg)):
        if n >= cfg.n_events:
            return
        assert ev.arrival is not None
        model = event_type(ev.type).model
        yield CanonicalEvent(
            id=ev.id,
            source=ev.source,
            type=ev.type,
            time=_time(ev.arrival[0], n),
            data=model.model_validate(ev.data),
        )
