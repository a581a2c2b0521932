"""An independent recomputation of every indicator of docs/indicators.md, from the raw events.

Written from the "Precise definitions" section alone, sharing no code with the engine: it keeps
the events received, in arrival order, and answers "what is indicator X for segment S on day D"
by looking at them the plain way (loop over loans, clients, complaints). It is meant to be read
and believed, not to be fast; the only help it takes is a few per-entity lists built once.

Readings the text settles (v1.1), written out here so a reader can check them:

- events of a client never registered count in ``all`` and ``gender:unknown``; a *loan* of such
  a client also counts in its own ``branch:`` and ``product:`` (they come from the loan);
- clients never registered never exit (their explicit exits are ignored, so are inferred ones);
- a registered client with no rural flag is in no ``rural:`` segment and counts in
  ``rural_borrower_share`` in the denominator only;
- poverty likelihoods against different lines are never averaged: ``poverty_outreach_entry`` is
  the primary line's (``Params.poverty_line``), ``poverty_outreach_entry.<line>`` each line's;
- corrections (contract v1.1): a reversal cancels the repayments, disbursals and write-offs of
  its loan with its transaction id, in either arrival order; the loan is defined by its first
  disbursal received that is not cancelled (none: the loan does not exist, and only its
  write-offs count, by the write-off's own client); a closure is never cancelled;
- ``n`` is only defined for quantiles; other values have ``n = None`` here.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from contracts.envelope import CanonicalEvent

CONDUCT = frozenset(
    {"staff_misconduct", "coercive_collection", "discrimination", "privacy", "hidden_fees"}
)

LOAN_CODES = (
    "active_borrowers",
    "gross_loan_portfolio",
    "women_borrower_share",
    "rural_borrower_share",
    "avg_balance_gni_ratio",
    "par30",
    "par90",
    "write_off_ratio",
    "new_borrower_women_share",
    "avg_disbursed_amount",
    "dsti_breach_share",
    "multi_lender_share",
)
CLIENT_CODES = (
    "active_clients",
    "poverty_outreach_entry",
    "dropout_rate",
    "client_retention_rate",
)
EXIT_REASON_PREFIX = "exit_reason_share."
POVERTY_PREFIX = "poverty_outreach_entry."
COMPLAINT_CODES = (
    "complaints_per_1k_clients",
    "complaints_resolved_in_sla",
    "complaint_resolution_days_p50",
    "complaint_resolution_days_p90",
    "open_complaints_past_sla",
    "conduct_complaint_share",
)
QUANTILE_CODES = ("complaint_resolution_days_p50", "complaint_resolution_days_p90")
COUNT_CODES = (
    "active_clients",
    "active_borrowers",
    "gross_loan_portfolio",
    "open_complaints_past_sla",
)


@dataclass(frozen=True)
class Params:
    sla_days: int = 30
    dsti_limit: Decimal = Decimal("0.5")
    lender_count: int = 3
    gni_per_capita: Decimal | None = None
    dropout_delay_days: int = 90
    timezone: str = "UTC"
    poverty_line: str = "national"


@dataclass(frozen=True)
class Value:
    value: Decimal | None
    numerator: Decimal | None
    denominator: Decimal | None
    n: int | None = None


def family(code: str) -> str:
    if code in LOAN_CODES:
        return "loan"
    if code in CLIENT_CODES or code.startswith((EXIT_REASON_PREFIX, POVERTY_PREFIX)):
        return "client"
    if code in COMPLAINT_CODES:
        return "complaint"
    raise KeyError(code)


def _div(num: Decimal | int, den: Decimal | int) -> Decimal | None:
    if den == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 50
        return Decimal(num) / Decimal(den)


def ratio(num: Decimal | int, den: Decimal | int, scale: int = 1) -> Value:
    value = _div(Decimal(num) * scale, den)
    return Value(value, Decimal(num), Decimal(den))


def count(value: Decimal | int) -> Value:
    return Value(Decimal(value), Decimal(value), None)


def window(day: date, n_days: int) -> tuple[date, date]:
    """Days D-N+1 … D, inclusive."""
    return day - timedelta(days=n_days - 1), day


def in_window(d: date, win: tuple[date, date]) -> bool:
    return win[0] <= d <= win[1]


def percentile_cont(values: list[Fraction], p: Fraction) -> Fraction:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _days(delta: timedelta) -> Fraction:
    """A duration in fractional days, exactly."""
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Fraction(micros, 86_400_000_000)


def _fraction_to_decimal(f: Fraction) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 50
        return Decimal(f.numerator) / Decimal(f.denominator)


@dataclass
class Client:
    pid: str
    registered_from: date
    branch: str
    gender: str
    rural: bool | None
    exit_day: date | None = None
    exit_type: str | None = None
    exit_reason: str | None = None
    explicit_exit: bool = False


@dataclass
class Loan:
    key: tuple[str, str]
    client_pid: str
    branch: str
    product: str
    amount: Decimal
    disbursed_on: date
    loan_cycle: int | None
    instalment: Decimal | None
    income: Decimal | None
    other_lenders: int | None
    end: date | None = None


@dataclass
class Complaint:
    key: tuple[str, str]
    branch: str
    category: str
    opened_at: datetime
    opened_day: date
    resolved_at: datetime | None = None
    resolved_day: date | None = None


class Oracle:
    """All events received (arrival order) -> every indicator, for every segment, on any day."""

    def __init__(self, events: Iterable[CanonicalEvent], params: Params | None = None) -> None:
        self.params = params or Params()
        self.tz = ZoneInfo(self.params.timezone)
        received: list[tuple[int, str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for event in events:
            if (event.source, event.id) in seen:
                continue  # a duplicate: the first received counts, whatever the content
            seen.add((event.source, event.id))
            received.append((len(received), event.source, event))
        self.received = received
        self._build()

    # --- entities ------------------------------------------------------------------------------

    def _build(self) -> None:
        by_type: dict[str, list[tuple[int, str, Any]]] = defaultdict(list)
        for arrival, source, event in self.received:
            by_type[event.type].append((arrival, source, event.data))
        self.business_date = max(
            (self._event_day(e.type, e.data) for _, _, e in self.received), default=None
        )

        # clients: earliest registered_on registers; greatest (ties: last received) describes
        regs: dict[str, list[tuple[date, int, Any]]] = defaultdict(list)
        for arrival, _, d in by_type["spm.client.registered.v1"]:
            regs[d.client_pid].append((d.registered_on, arrival, d))
        self.clients: dict[str, Client] = {}
        for pid, items in regs.items():
            latest = max(items, key=lambda x: (x[0], x[1]))[2]
            self.clients[pid] = Client(
                pid, min(x[0] for x in items), latest.branch_id, latest.gender, latest.rural
            )

        # corrections: a reversal cancels every repayment, disbursal and write-off of its loan
        # with its transaction id, whichever arrived first; a cancelled event never happened
        reversed_tx = {
            (source, d.loan_id, d.transaction_id)
            for _, source, d in by_type["spm.loan.transaction_reversed.v1"]
        }

        def cancelled(source: str, d: Any) -> bool:
            tx = d.transaction_id
            return tx is not None and (source, d.loan_id, tx) in reversed_tx

        # loans: the first disbursement received that is not cancelled defines the loan; a
        # loan whose every disbursement is cancelled does not exist
        self.loans: dict[tuple[str, str], Loan] = {}
        for _, source, d in by_type["spm.loan.disbursed.v1"]:
            key = (source, d.loan_id)
            if key in self.loans or cancelled(source, d):
                continue
            self.loans[key] = Loan(
                key,
                d.client_pid,
                d.branch_id,
                d.product_id,
                d.amount,
                d.disbursed_on,
                d.loan_cycle,
                d.instalment_monthly,
                d.household_income_monthly,
                d.other_active_lenders,
            )
        ends: dict[tuple[str, str], list[date]] = defaultdict(list)
        for _, source, d in by_type["spm.loan.closed.v1"]:
            ends[(source, d.loan_id)].append(d.closed_on)
        # write-offs: (loan or None, the write-off's client, day, amount); a loan with no
        # disbursal in force still has its write-offs counted (by the write-off's client)
        self.write_offs: list[tuple[Loan | None, str, date, Decimal]] = []
        for _, source, d in by_type["spm.loan.written_off.v1"]:
            if cancelled(source, d):
                continue  # an undone write-off: the loan did not end then, nothing written off
            ends[(source, d.loan_id)].append(d.written_off_on)
            self.write_offs.append(
                (self.loans.get((source, d.loan_id)), d.client_pid, d.written_off_on,
                 d.principal_written_off)
            )  # fmt: skip
        for key, loan in self.loans.items():
            if ends.get(key):
                loan.end = min(ends[key])

        # per loan: (value_date, principal_paid) of repayments that were not reversed
        self.repayments: dict[tuple[str, str], list[tuple[date, Decimal]]] = defaultdict(list)
        for _, source, d in by_type["spm.loan.repayment.v1"]:
            if (source, d.loan_id, d.transaction_id) in reversed_tx:
                continue
            self.repayments[(source, d.loan_id)].append((d.value_date, d.principal_paid))

        self.delinquency: dict[tuple[str, str], list[tuple[date, int, int]]] = defaultdict(list)
        for arrival, source, d in by_type["spm.loan.delinquency.v1"]:
            self.delinquency[(source, d.loan_id)].append((d.as_of, arrival, d.days_past_due))

        self.loans_of: dict[str, list[Loan]] = defaultdict(list)
        for loan in self.loans.values():
            self.loans_of[loan.client_pid].append(loan)

        # exits: explicit (earliest exited_on, ties first received) or inferred
        exits: dict[str, list[tuple[date, int, Any]]] = defaultdict(list)
        for arrival, _, d in by_type["spm.client.exited.v1"]:
            exits[d.client_pid].append((d.exited_on, arrival, d))
        delay = timedelta(days=self.params.dropout_delay_days)
        for pid, client in self.clients.items():
            if exits.get(pid):
                first = min(exits[pid], key=lambda x: (x[0], x[1]))[2]
                client.exit_day = first.exited_on
                client.exit_type = first.exit_type
                client.exit_reason = first.reason_code
                client.explicit_exit = True
                continue
            loans = self.loans_of.get(pid, [])
            if not loans or any(loan.end is None for loan in loans):
                continue
            last_end = max(loan.end for loan in loans if loan.end is not None)
            if any(loan.disbursed_on > last_end for loan in loans):
                continue  # a later disbursement: the inferred exit never happened
            client.exit_day = last_end + delay
            client.exit_type = "inferred"

        self.assessments = [
            (d.assessed_on, d.client_pid, d.poverty_line, d.likelihood)
            for _, _, d in by_type["spm.poverty.assessed.v1"]
        ]

        # complaints: first opening received, earliest resolution
        self.complaints: dict[tuple[str, str], Complaint] = {}
        for _, source, d in by_type["spm.complaint.opened.v1"]:
            key = (source, d.complaint_id)
            if key not in self.complaints:
                self.complaints[key] = Complaint(
                    key, d.branch_id, d.category, d.opened_at, self.local_day(d.opened_at)
                )
        for _, source, d in by_type["spm.complaint.resolved.v1"]:
            complaint = self.complaints.get((source, d.complaint_id))
            if complaint is None:
                continue  # waits for its opening (which never came)
            if complaint.resolved_at is None or d.resolved_at < complaint.resolved_at:
                complaint.resolved_at = d.resolved_at
                complaint.resolved_day = self.local_day(d.resolved_at)

        # memo only: segments never change once everything is received
        self._loan_segs = {key: self._loan_segments(loan) for key, loan in self.loans.items()}
        self._write_off_segs = [
            self.loan_segments(loan) if loan is not None else self._write_off_segments(pid)
            for loan, pid, _, _ in self.write_offs
        ]
        self._client_segs = {pid: self._client_segments(pid) for pid in self.clients}
        self._paid: dict[tuple[str, str], tuple[list[date], list[Decimal]]] = {}
        for key in self.loans:
            ordered = sorted(self.repayments.get(key, []), key=lambda r: r[0])
            running = list(itertools.accumulate(p for _, p in ordered))
            self._paid[key] = ([d for d, _ in ordered], running)
        self._family_segs: dict[str, set[str]] = {}
        self._stock_cache: dict[tuple[date, str], tuple[set[str], Decimal, Decimal, Decimal]] = {}
        self._portfolio_cache: dict[date, dict[str, Decimal]] = {}

    def local_day(self, ts: datetime) -> date:
        return ts.astimezone(self.tz).date()

    def _event_day(self, type_: str, d: Any) -> date:
        for name in (
            "registered_on",
            "exited_on",
            "assessed_on",
            "disbursed_on",
            "value_date",
            "as_of",
            "written_off_on",
            "closed_on",
            "reversed_on",
        ):
            if hasattr(d, name):
                return getattr(d, name)  # type: ignore[no-any-return]
        return self.local_day(d.opened_at if hasattr(d, "opened_at") else d.resolved_at)

    # --- segments ------------------------------------------------------------------------------

    def client_segments(self, pid: str) -> list[str]:
        return self._client_segs.get(pid) or self._client_segments(pid)

    def _client_segments(self, pid: str) -> list[str]:
        client = self.clients.get(pid)
        if client is None:
            return ["all", "gender:unknown"]
        out = ["all", f"branch:{client.branch}", f"gender:{client.gender}"]
        if client.rural is not None:
            out.append(f"rural:{str(client.rural).lower()}")
        return out

    def loan_segments(self, loan: Loan) -> list[str]:
        return self._loan_segs[loan.key]

    def _loan_segments(self, loan: Loan) -> list[str]:
        client = self.clients.get(loan.client_pid)
        if client is None:  # branch and product are the loan's, registered client or not
            return ["all", f"branch:{loan.branch}", f"product:{loan.product}", "gender:unknown"]
        out = [
            "all",
            f"branch:{loan.branch}",
            f"product:{loan.product}",
            f"gender:{client.gender}",
        ]
        if client.rural is not None:
            out.append(f"rural:{str(client.rural).lower()}")
        return out

    def _write_off_segments(self, pid: str) -> list[str]:
        """A write-off of a loan with no disbursal in force: ``all`` and the gender and rural
        segments of the write-off's own client (no branch, no product: no disbursal says)."""
        return [s for s in self._client_segments(pid) if not s.startswith("branch:")]

    def segments(self, code: str) -> set[str]:
        """Segment values seen for the indicator's family (the API must list at least these)."""
        fam = family(code)
        if fam in self._family_segs:
            return self._family_segs[fam]
        out = {"all"}
        if fam == "loan":
            for loan in self.loans.values():
                out.update(self.loan_segments(loan))
            for segs in self._write_off_segs:
                out.update(segs)
        elif fam == "client":
            for pid in self.clients:
                out.update(self.client_segments(pid))
            for _, pid, _, _ in self.assessments:
                out.update(self.client_segments(pid))
        else:
            out.update(f"branch:{c.branch}" for c in self.complaints.values())
        self._family_segs[fam] = out
        return out

    def exit_reasons(self) -> set[str]:
        return {
            c.exit_reason
            for c in self.clients.values()
            if c.explicit_exit and c.exit_reason is not None
        }

    def poverty_lines(self) -> set[str]:
        """Every line assessed against, and the primary line (listed before any uses it)."""
        return {line for _, _, line, _ in self.assessments} | {self.params.poverty_line}

    def codes(self) -> list[str]:
        reasons = sorted(EXIT_REASON_PREFIX + r for r in self.exit_reasons())
        lines = sorted(POVERTY_PREFIX + line for line in self.poverty_lines())
        return [*LOAN_CODES, *CLIENT_CODES, *lines, *reasons, *COMPLAINT_CODES]

    # --- state on a day ----------------------------------------------------------------------

    def is_active(self, client: Client, day: date) -> bool:
        return client.registered_from <= day and (client.exit_day is None or client.exit_day > day)

    def is_open(self, loan: Loan, day: date) -> bool:
        return loan.disbursed_on <= day and (loan.end is None or day < loan.end)

    def outstanding(self, loan: Loan, day: date) -> Decimal:
        if not self.is_open(loan, day):
            return Decimal(0)
        # Σ principal_paid of the (unreversed) repayments with value_date <= day, read from
        # running totals over the repayments sorted by value date
        dates, totals = self._paid[loan.key]
        paid = totals[bisect_right(dates, day) - 1] if dates and dates[0] <= day else Decimal(0)
        return max(Decimal(0), loan.amount - paid)

    def days_past_due(self, loan: Loan, day: date) -> int:
        reports = [r for r in self.delinquency.get(loan.key, []) if r[0] <= day]
        if not reports:
            return 0
        as_of, _, dpd = max(reports, key=lambda r: (r[0], r[1]))
        return dpd + (day - as_of).days if dpd > 0 else 0

    def portfolio(self, day: date, segment: str) -> Decimal:
        """Gross loan portfolio of a segment on a day (all segments computed at once, memoised)."""
        if day not in self._portfolio_cache:
            by_segment: dict[str, Decimal] = defaultdict(Decimal)
            for loan in self.loans.values():
                if self.is_open(loan, day):
                    out = self.outstanding(loan, day)
                    for seg in self.loan_segments(loan):
                        by_segment[seg] += out
            self._portfolio_cache[day] = by_segment
        return self._portfolio_cache[day].get(segment, Decimal(0))

    def loan_stock(self, day: date, segment: str) -> tuple[set[str], Decimal, Decimal, Decimal]:
        """(active borrowers, portfolio, portfolio > 30 dpd, portfolio > 90 dpd), memoised."""
        if (day, segment) not in self._stock_cache:
            borrowers: set[str] = set()
            glp = par30 = par90 = Decimal(0)
            for loan in self.loans.values():
                if not self.is_open(loan, day) or segment not in self.loan_segments(loan):
                    continue
                out = self.outstanding(loan, day)
                glp += out
                if out > 0:
                    borrowers.add(loan.client_pid)
                dpd = self.days_past_due(loan, day)
                if dpd > 30:
                    par30 += out
                if dpd > 90:
                    par90 += out
            self._stock_cache[(day, segment)] = (borrowers, glp, par30, par90)
        return self._stock_cache[(day, segment)]

    # --- indicators ----------------------------------------------------------------------------

    def value(self, code: str, segment: str, day: date) -> Value:
        fam = family(code)
        if fam == "loan":
            return self._loan_value(code, segment, day)
        if fam == "client":
            return self._client_value(code, segment, day)
        return self._complaint_value(code, segment, day)

    def _loan_value(self, code: str, segment: str, day: date) -> Value:
        p = self.params
        if code in (
            "active_borrowers",
            "gross_loan_portfolio",
            "women_borrower_share",
            "rural_borrower_share",
            "avg_balance_gni_ratio",
            "par30",
            "par90",
        ):
            borrowers, glp, par30, par90 = self.loan_stock(day, segment)
            if code == "active_borrowers":
                return count(len(borrowers))
            if code == "gross_loan_portfolio":
                return count(glp)
            if code == "women_borrower_share":
                women = [b for b in borrowers if self._attr(b, "gender") == "female"]
                return ratio(len(women), len(borrowers))
            if code == "rural_borrower_share":
                rural = [b for b in borrowers if self._attr(b, "rural") is True]
                return ratio(len(rural), len(borrowers))
            if code == "avg_balance_gni_ratio":
                if p.gni_per_capita is None:
                    return Value(None, glp, None)
                return ratio(glp, len(borrowers) * p.gni_per_capita)
            return ratio(par30 if code == "par30" else par90, glp)
        if code == "write_off_ratio":
            win = window(day, 365)
            written = sum(
                (
                    amount
                    for (_, _, d, amount), segs in zip(
                        self.write_offs, self._write_off_segs, strict=True
                    )
                    if in_window(d, win) and segment in segs
                ),
                Decimal(0),
            )
            total = Decimal(0)
            for i in range(365):
                total += self.portfolio(win[0] + timedelta(days=i), segment)
            with localcontext() as ctx:
                ctx.prec = 50
                mean = total / 365
            return ratio(written, mean)
        n_days = 90 if code in ("new_borrower_women_share", "avg_disbursed_amount") else 30
        win = window(day, n_days)
        disbursed = [
            loan
            for loan in self.loans.values()
            if in_window(loan.disbursed_on, win) and segment in self.loan_segments(loan)
        ]
        if code == "new_borrower_women_share":
            first = [loan for loan in disbursed if loan.loan_cycle == 1]
            to_women = [x for x in first if self._attr(x.client_pid, "gender") == "female"]
            return ratio(len(to_women), len(first))
        if code == "avg_disbursed_amount":
            return ratio(sum((loan.amount for loan in disbursed), Decimal(0)), len(disbursed))
        if code == "dsti_breach_share":
            known = [
                loan
                for loan in disbursed
                if loan.instalment is not None
                and loan.income is not None
                and loan.instalment > 0
                and loan.income > 0
            ]
            # instalment / income > limit, compared exactly: instalment > limit * income
            breaches = [
                loan
                for loan in known
                if loan.instalment is not None
                and loan.income is not None
                and loan.instalment > p.dsti_limit * loan.income
            ]
            return ratio(len(breaches), len(known))
        if code == "multi_lender_share":
            known = [loan for loan in disbursed if loan.other_lenders is not None]
            multi = [
                loan
                for loan in known
                if loan.other_lenders is not None and loan.other_lenders >= p.lender_count
            ]
            return ratio(len(multi), len(known))
        raise KeyError(code)

    def _attr(self, pid: str, name: str) -> Any:
        client = self.clients.get(pid)
        return None if client is None else getattr(client, name)

    def _client_value(self, code: str, segment: str, day: date) -> Value:
        clients = [c for c in self.clients.values() if segment in self.client_segments(c.pid)]
        if code == "active_clients":
            return count(sum(1 for c in clients if self.is_active(c, day)))
        if code == "poverty_outreach_entry" or code.startswith(POVERTY_PREFIX):
            # one poverty line at a time, never averaged across lines
            line = code.split(".", 1)[1] if "." in code else self.params.poverty_line
            win = window(day, 90)
            likelihoods = [
                lk
                for d, pid, ln, lk in self.assessments
                if ln == line and in_window(d, win) and segment in self.client_segments(pid)
            ]
            return ratio(sum(likelihoods, Decimal(0)), len(likelihoods))
        if code in ("dropout_rate", "client_retention_rate"):
            win = window(day, 365)
            before = win[0] - timedelta(days=1)
            denominator = sum(1 for c in clients if self.is_active(c, before)) + sum(
                1 for c in clients if in_window(c.registered_from, win)
            )
            if code == "dropout_rate":
                exits = sum(
                    1
                    for c in clients
                    if c.exit_day is not None
                    and in_window(c.exit_day, win)
                    and c.exit_type != "deceased"
                )
                return ratio(exits, denominator)
            return ratio(sum(1 for c in clients if self.is_active(c, day)), denominator)
        if code.startswith(EXIT_REASON_PREFIX):
            reason = code[len(EXIT_REASON_PREFIX) :]
            win = window(day, 90)
            with_reason = [
                c
                for c in clients
                if c.explicit_exit
                and c.exit_day is not None
                and in_window(c.exit_day, win)
                and c.exit_reason is not None
            ]
            return ratio(sum(1 for c in with_reason if c.exit_reason == reason), len(with_reason))
        raise KeyError(code)

    def _complaint_value(self, code: str, segment: str, day: date) -> Value:
        sla = self.params.sla_days
        complaints = [
            c for c in self.complaints.values() if segment in ("all", f"branch:{c.branch}")
        ]

        def is_open(c: Complaint) -> bool:
            return c.opened_day <= day and (c.resolved_day is None or c.resolved_day > day)

        if code == "complaints_per_1k_clients":
            win = window(day, 30)
            n_opened = sum(1 for c in complaints if in_window(c.opened_day, win))
            active = sum(
                1
                for client in self.clients.values()
                if self.is_active(client, day) and segment in ("all", f"branch:{client.branch}")
            )
            return ratio(n_opened, active, scale=1000)
        if code == "open_complaints_past_sla":
            return count(
                sum(1 for c in complaints if is_open(c) and (day - c.opened_day).days > sla)
            )
        if code == "conduct_complaint_share":
            win = window(day, 90)
            opened = [c for c in complaints if in_window(c.opened_day, win)]
            return ratio(sum(1 for c in opened if c.category in CONDUCT), len(opened))
        win = window(day, 90)
        resolved = [
            c for c in complaints if c.resolved_day is not None and in_window(c.resolved_day, win)
        ]
        if code == "complaints_resolved_in_sla":
            in_time = sum(
                1
                for c in resolved
                if c.resolved_day is not None and (c.resolved_day - c.opened_day).days <= sla
            )
            past = sum(1 for c in complaints if is_open(c) and (day - c.opened_day).days > sla)
            return ratio(in_time, len(resolved) + past)
        if code in QUANTILE_CODES:
            durations = [_days(c.resolved_at - c.opened_at) for c in resolved if c.resolved_at]
            if not durations:
                return Value(None, None, None, 0)
            p = Fraction(1, 2) if code.endswith("p50") else Fraction(9, 10)
            return Value(
                _fraction_to_decimal(percentile_cont(durations, p)), None, None, len(durations)
            )
        raise KeyError(code)

    def all_values(self, day: date) -> dict[tuple[str, str], Value]:
        """Every indicator for every segment seen, on ``day``."""
        out: dict[tuple[str, str], Value] = {}
        for code in self.codes():
            for segment in sorted(self.segments(code)):
                out[(code, segment)] = self.value(code, segment, day)
        return out
