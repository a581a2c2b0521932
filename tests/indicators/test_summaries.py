"""A loan's summary against its definition, on random histories: the open interval with
outstanding principal > 0 stops on the first day (the disbursal's or a value date after it) by
which the principal repaid (reversals excluded) reaches the amount, or on the loan's end if that
comes first. ``summarize`` finds that day by bisection; this walks every day instead."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.indicators.contributions import outstanding_steps, summarize
from services.indicators.state import Disbursement, LoanState

DAY0 = 738_000

payments = st.lists(
    st.tuples(st.integers(DAY0 - 10, DAY0 + 60), st.sampled_from([0, 100, 300]), st.booleans()),
    max_size=12,
)


def _stop_by_walking(loan: LoanState) -> int | None:
    d = loan.disb
    assert d is not None
    paid: dict[int, int] = {}
    for tx, items in loan.repayments.items():
        if tx not in loan.reversed:
            for day, principal in items:
                paid[day] = paid.get(day, 0) + principal
    stop = loan.end
    for day in range(d.day, DAY0 + 61):
        if day == d.day or day in paid:
            repaid = sum(p for x, p in paid.items() if x <= day)
            if d.amount - repaid <= 0:
                return day if stop is None else min(stop, day)
    return stop


@settings(max_examples=300, deadline=None)
@given(
    amount=st.integers(0, 15).map(lambda n: n * 100),  # often exactly repaid
    start=st.integers(DAY0 - 10, DAY0 + 10),
    history=payments,
    closed=st.none() | st.integers(DAY0 - 20, DAY0 + 70),
    written_off=st.none() | st.integers(DAY0 - 20, DAY0 + 70),
)
@example(100, DAY0, [(DAY0 + 5, 100, False)], None, None)  # repaid exactly, on a value date
@example(
    300, DAY0, [(DAY0 + 5, 0, False), (DAY0 + 6, 300, False), (DAY0 + 7, 0, False)], None, None
)
@example(100, DAY0, [(DAY0 - 5, 100, False)], DAY0 + 3, None)  # repaid before it was disbursed
def test_stop_is_the_first_day_repaid_or_the_end(
    amount: int,
    start: int,
    history: list[tuple[int, int, bool]],
    closed: int | None,
    written_off: int | None,
) -> None:
    loan = LoanState(closed=closed, written_off=written_off)
    loan.disb = Disbursement("c", "B1", "P1", start, amount, None, None, None, None)
    for i, (day, principal, reversed_) in enumerate(history):
        tx = ("s", f"t{i % 5}")  # some transactions repeat: several payments under one id
        loan.repayments.setdefault(tx, []).append((day, principal))
        if reversed_:
            loan.reversed.add(tx)
    summary = summarize(loan)
    assert summary is not None
    assert summary.stop == _stop_by_walking(loan)
    assert summary.end == min((d for d in (closed, written_off) if d is not None), default=None)
    assert summarize(loan, outstanding_steps(loan)) == summary
