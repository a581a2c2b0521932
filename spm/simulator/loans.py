"""Loan lifecycle: disbursement, instalments paid on time or late, arrears ranges, write-off,
closure, and what the client does next (repeat loan or exit).

Corrections, as core banking lets loan officers make them (contract v1.1): a few disbursals are
posted with a wrong amount, undone the next day (``loan.transaction_reversed`` of the disbursal's
``transaction_id``) and posted again with the right amount and date; a few write-offs are undone
some days later (the client comes back and pays the arrears). A write-off ends the loan by
itself: no ``loan.closed`` is sent for it, since a closure cannot be undone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from spm.simulator import behaviour as bh
from spm.simulator.config import Product
from spm.simulator.events import CENTS, bucket, money
from spm.simulator.world import Client, Loan, World

ARREARS_REPORT_DAYS = (1, 31, 61, 91)
WRITE_OFF_DAYS = 180
DISBURSAL_CORRECTION_RATE = 0.01
"""Share of new disbursals posted wrong, undone and redone the next day."""
WRITE_OFF_UNDO_RATE = 0.15
"""Share of write-offs undone (the client pays the arrears)."""


class LoanBook:
    def __init__(self, world: World) -> None:
        self.w = world
        self.in_arrears: dict[str, Loan] = {}

    # --- disbursement ----------------------------------------------------------------------

    def disburse(self, client: Client, day: date, *, opening_start: date | None = None) -> None:
        """A new loan for ``client`` on ``day``. With ``opening_start`` (the opening book) the
        instalments due before it are emitted at once as paid on time."""
        w, cfg = self.w, self.w.config
        if not client.active:
            return
        d = cfg.drift(day, client.branch)
        product = w.rng.choice(cfg.product_list)
        client.cycle += 1
        terms = bh.loan_terms(w.rng, product, client.cycle, d)
        corrected = opening_start is None and w.corrections.random() < DISBURSAL_CORRECTION_RATE
        start = day + timedelta(days=1) if corrected else day
        loan = self._schedule(client, product, terms.amount, start)
        disbursal = {
            "loan_id": loan.id,
            "client_id": client.id,
            "branch_id": client.branch,
            "product_id": product.id,
            "officer_id": client.officer,
            "loan_cycle": client.cycle,
            "amount": money(terms.amount),
            "currency": cfg.currency,
            "term_months": product.term_months,
            "instalment_monthly": money(terms.instalment),
            "household_income_monthly": money(terms.income),
            "other_active_lenders": terms.other_lenders,
            "disbursed_on": start.isoformat(),
            "transaction_id": w.next_id("txn", "T{:08d}"),
        }
        if corrected:  # posted with a wrong amount today, undone and redone tomorrow
            factor = w.corrections.choice((Decimal("0.9"), Decimal("1.1")))
            wrong = {
                **disbursal,
                "amount": money(terms.amount * factor),
                "disbursed_on": day.isoformat(),
                "transaction_id": w.next_id("txn", "T{:08d}"),
            }
            at = w.factory.at(day, 9 * 3600 + w.corrections.randint(0, 7 * 3600 - 1))
            w.emit("spm.loan.disbursed.v1", at, wrong)
            w.later(start, partial(self._redo_disbursal, wrong, disbursal))
        else:
            w.emit("spm.loan.disbursed.v1", w.factory.at(day, w.seconds(9, 16)), disbursal)
        day = start
        default_at: int | None = None
        if w.rng.random() < bh.default_probability(d, terms.dsti_breach):
            default_at = w.rng.randint(1, max(1, product.term_months // 2))
        for k, due in enumerate(loan.due):
            if default_at is not None and k >= default_at and (opening_start or day) <= due:
                w.later(due, partial(self._due, loan, k, False))  # never paid: ages to write-off
                continue
            if opening_start is not None and due < opening_start:
                self._pay(loan, k, due)
                continue
            delay = bh.late_delay(w.rng, d)
            w.later(due, partial(self._due, loan, k, delay == 0))
            if delay:
                w.later(due + timedelta(days=delay), partial(self._pay, loan, k))

    def _redo_disbursal(self, wrong: dict[str, Any], right: dict[str, Any], day: date) -> None:
        w = self.w
        self._reverse(wrong, day, w.factory.at(day, 8 * 3600 + w.corrections.randint(0, 3599)))
        at = w.factory.at(day, 9 * 3600 + w.corrections.randint(0, 3 * 3600))
        w.emit("spm.loan.disbursed.v1", at, right)

    def _reverse(self, original: dict[str, Any], day: date, at: datetime) -> None:
        """``loan.transaction_reversed`` of ``original``'s transaction, at ``at``."""
        w = self.w
        w.emit(
            "spm.loan.transaction_reversed.v1",
            at,
            {
                "loan_id": original["loan_id"],
                "client_id": original["client_id"],
                "transaction_id": original["transaction_id"],
                "reversed_on": day.isoformat(),
            },
        )

    def _schedule(self, client: Client, product: Product, amount: Decimal, day: date) -> Loan:
        term = product.term_months
        each = (amount / term).quantize(CENTS)
        principal = [each] * (term - 1) + [amount - each * (term - 1)]
        interest = (amount * Decimal(product.monthly_rate)).quantize(CENTS)
        due = [bh.add_months(day, k + 1) for k in range(term)]
        loan_id = self.w.next_id("loan", "L{:07d}")
        return Loan(loan_id, client, product, amount, principal, interest, due, amount)

    # --- instalments -----------------------------------------------------------------------

    def _due(self, loan: Loan, k: int, on_time: bool, day: date) -> None:
        if loan.ended:
            return
        if on_time or loan.cured:
            self._pay(loan, k, day)
        else:
            loan.unpaid.add(k)
            self.in_arrears[loan.id] = loan

    def _pay(self, loan: Loan, k: int, day: date) -> None:
        w = self.w
        if loan.ended or k in loan.settled:
            return
        principal = loan.principal[k]
        loan.outstanding -= principal
        loan.paid += 1
        loan.settled.add(k)
        txn = w.next_id("txn", "T{:08d}")
        data = {
            "loan_id": loan.id,
            "client_id": loan.client.id,
            "transaction_id": txn,
            "value_date": day.isoformat(),
            "amount": money(principal + loan.interest),
            "principal_paid": money(principal),
            "interest_paid": money(loan.interest),
            "outstanding_principal_after": money(loan.outstanding),
        }
        w.emit("spm.loan.repayment.v1", w.factory.at(day, w.seconds(7, 19)), data)
        if w.rng.random() < 0.003:  # a mis-posting, reversed and re-posted the next day
            w.later(day + timedelta(days=1), partial(self._correct, data))
        if k in loan.unpaid:
            loan.unpaid.discard(k)
            self._report(loan, day)
        if loan.paid == len(loan.due):
            self._close(loan, day, "repaid")

    def _correct(self, original: dict[str, str], day: date) -> None:
        w = self.w
        self._reverse(original, day, w.factory.at(day, w.seconds(8, 10)))
        reposted = {**original, "transaction_id": w.next_id("txn", "T{:08d}")}
        w.emit("spm.loan.repayment.v1", w.factory.at(day, w.seconds(10, 12)), reposted)

    # --- arrears ---------------------------------------------------------------------------

    def days_past_due(self, loan: Loan, day: date) -> int:
        return (day - min(loan.due[k] for k in loan.unpaid)).days if loan.unpaid else 0

    def _report(self, loan: Loan, day: date) -> None:
        w = self.w
        dpd = self.days_past_due(loan, day)
        low, high = bucket(dpd)
        arrears = sum((loan.principal[k] + loan.interest for k in loan.unpaid), Decimal(0))
        w.emit(
            "spm.loan.delinquency.v1",
            w.factory.at(day, 23 * 3600 + 50 * 60),
            {
                "loan_id": loan.id,
                "client_id": loan.client.id,
                "as_of": day.isoformat(),
                "days_past_due": dpd,
                "bucket_min_days": low,
                "bucket_max_days": high,
                "arrears_amount": money(arrears),
                "outstanding_principal": money(loan.outstanding),
            },
        )
        if not dpd:
            self.in_arrears.pop(loan.id, None)

    def age(self, day: date) -> None:
        """Close of business: report arrears range changes, write off loans 180 days late."""
        for loan in list(self.in_arrears.values()):
            dpd = self.days_past_due(loan, day)
            if dpd >= WRITE_OFF_DAYS:
                self._write_off(loan, day)
            elif dpd in ARREARS_REPORT_DAYS:
                self._report(loan, day)

    def _write_off(self, loan: Loan, day: date) -> None:
        w = self.w
        data = {
            "loan_id": loan.id,
            "client_id": loan.client.id,
            "principal_written_off": money(loan.outstanding),
            "written_off_on": day.isoformat(),
            "transaction_id": w.next_id("txn", "T{:08d}"),
        }
        w.emit("spm.loan.written_off.v1", w.factory.at(day, 19 * 3600), data)
        self.in_arrears.pop(loan.id, None)
        if w.corrections.random() < WRITE_OFF_UNDO_RATE:
            loan.ended = True  # until the undo: the client comes back
            undo_on = day + timedelta(days=w.corrections.randint(3, 20))
            w.later(undo_on, partial(self._undo_write_off, loan, data))
            return
        self._close(loan, day, "written_off")

    def _undo_write_off(self, loan: Loan, write_off: dict[str, Any], day: date) -> None:
        """The write-off is reversed; the client pays every instalment due so far, then the rest
        on time."""
        w = self.w
        self._reverse(write_off, day, w.factory.at(day, 9 * 3600 + w.corrections.randint(0, 3599)))
        loan.ended = False
        loan.cured = True
        for k, due in enumerate(loan.due):
            if due <= day and k not in loan.settled:
                loan.unpaid.add(k)
        for k in sorted(loan.unpaid):
            self._pay(loan, k, day)

    # --- the end of a loan -------------------------------------------------------------------

    def _close(self, loan: Loan, day: date, closure: str) -> None:
        w = self.w
        loan.ended = True
        if closure != "written_off":  # the write-off itself ends the loan (it can be undone)
            w.emit(
                "spm.loan.closed.v1",
                w.factory.at(day, 19 * 3600 + 1),
                {
                    "loan_id": loan.id,
                    "client_id": loan.client.id,
                    "closed_on": day.isoformat(),
                    "closure_type": closure,
                },
            )
        client = loan.client
        if closure == "written_off":
            reason = bh.weighted(w.rng, bh.INVOLUNTARY_REASONS)
            w.later(day + timedelta(days=w.rng.randint(1, 30)),
                    partial(self.exit, client, "involuntary", reason))  # fmt: skip
            return
        d = w.config.drift(day, client.branch)
        roll = w.rng.random()
        if roll < 0.88 - 0.1 * d:
            w.later(day + timedelta(days=w.rng.randint(1, 21)), partial(self.disburse, client))
        elif roll < 0.95:
            reason = bh.weighted(w.rng, bh.VOLUNTARY_REASONS)
            w.later(day + timedelta(days=w.rng.randint(7, 60)),
                    partial(self.exit, client, "voluntary", reason))  # fmt: skip
        elif roll < 0.955:
            w.later(day + timedelta(days=w.rng.randint(1, 90)),
                    partial(self.exit, client, "deceased", None))  # fmt: skip
        # else: the client just stops borrowing (the indicator service infers the drop-out)

    def exit(self, client: Client, exit_type: str, reason: str | None, day: date) -> None:
        w = self.w
        if not client.active:
            return
        client.active = False
        w.active_count[client.branch] -= 1
        w.emit(
            "spm.client.exited.v1",
            w.factory.at(day, w.seconds(10, 16)),
            {
                "client_id": client.id,
                "branch_id": client.branch,
                "exited_on": day.isoformat(),
                "exit_type": exit_type,
                "reason_code": reason,
            },
        )
