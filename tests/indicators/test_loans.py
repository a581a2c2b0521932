"""Loan indicators, hand-computed: outstanding principal with repayments and reversals (either
order), active borrowers per branch/product, shares, unregistered clients, PAR aging, write-off
ratio, disbursement flows (DSTI, lenders, first cycle, average amount), depth of outreach."""

from __future__ import annotations

from decimal import Decimal

from tests.indicators.conftest import Harness
from tests.indicators.events import close, disb, dpd, reg, repay, reverse, writeoff


async def test_outstanding_repayments_and_reversals_in_either_order(harness: Harness) -> None:
    h = harness
    await h.send(
        [
            reg("A", "2024-01-01", "B1", "female", True),
            disb("L1", "A", "2024-01-10", "1000", "B1", "P1"),
            repay("L1", "A", "t1", "2024-02-10", "300"),
            repay("L1", "A", "t2", "2024-03-10", "200"),
            reverse("L1", "A", "t2", "2024-03-15"),  # after its repayment
            reverse("L1", "A", "t3", "2024-03-16"),  # before its repayment: waits for it
            repay("L1", "A", "t3", "2024-03-20", "200"),
            close("L1", "A", "2024-04-01"),
        ]
    )
    assert await h.v("gross_loan_portfolio", "all", "2024-01-09") == 0
    assert await h.v("gross_loan_portfolio", "all", "2024-01-10") == 1000
    assert await h.v("gross_loan_portfolio", "all", "2024-02-09") == 1000
    assert await h.v("gross_loan_portfolio", "all", "2024-02-10") == 700
    assert await h.v("gross_loan_portfolio", "branch:B1", "2024-03-31") == 700  # t2, t3 reversed
    assert await h.v("gross_loan_portfolio", "product:P1", "2024-03-31") == 700
    assert await h.v("gross_loan_portfolio", "all", "2024-04-01") == 0  # ended
    assert await h.v("active_borrowers", "all", "2024-03-31") == 1
    assert await h.v("active_borrowers", "all", "2024-04-01") == 0
    glp = await h.value("gross_loan_portfolio", "all", "2024-02-10")
    assert (glp["numerator"], glp["denominator"], glp["unit"]) == (700, None, "KES")


async def test_active_borrowers_segments_shares_and_unregistered(harness: Harness) -> None:
    h = harness
    await h.send(
        [
            reg("B", "2024-01-01", "B1", "male", False),
            reg("C", "2024-01-01", "B1", "female", True),
            disb("L2", "B", "2024-01-05", "500", "B1", "P1"),
            disb("L3", "B", "2024-01-06", "800", "B2", "P2"),
            disb("L4", "C", "2024-01-07", "1000", "B1", "P1"),
            disb("L5", "U", "2024-01-08", "400", "B3", "P3"),  # U never registered
            repay("L2", "B", "t1", "2024-01-20", "500"),  # L2 repaid, never closed
        ]
    )
    # 2024-01-10: B (L2 in B1/P1, L3 in B2/P2), C (L4 in B1/P1), U (all, gender:unknown and
    # its loan's own branch B3 and product P3; no rural segment)
    assert await h.v("active_borrowers", "all", "2024-01-10") == 3
    assert await h.v("active_borrowers", "branch:B1", "2024-01-10") == 2
    assert await h.v("active_borrowers", "branch:B2", "2024-01-10") == 1
    assert await h.v("active_borrowers", "product:P1", "2024-01-10") == 2
    assert await h.v("active_borrowers", "branch:B3", "2024-01-10") == 1
    assert await h.v("active_borrowers", "product:P3", "2024-01-10") == 1
    assert await h.v("active_borrowers", "gender:unknown", "2024-01-10") == 1
    assert await h.v("gross_loan_portfolio", "all", "2024-01-10") == 2700
    assert await h.v("gross_loan_portfolio", "gender:unknown", "2024-01-10") == 400
    assert await h.v("gross_loan_portfolio", "branch:B3", "2024-01-10") == 400
    assert await h.v("avg_disbursed_amount", "product:P3", "2024-01-10") == 400
    b3 = await h.value("women_borrower_share", "branch:B3", "2024-01-10")
    assert (b3["numerator"], b3["denominator"]) == (0, 1)  # U: the denominator only
    women = await h.value("women_borrower_share", "all", "2024-01-10")
    assert (women["numerator"], women["denominator"]) == (1, 3)  # U: denominator only
    rural = await h.value("rural_borrower_share", "all", "2024-01-10")
    assert (rural["numerator"], rural["denominator"]) == (1, 3)
    assert await h.v("women_borrower_share", "branch:B1", "2024-01-10") == Decimal("0.5")
    assert await h.v("rural_borrower_share", "rural:false", "2024-01-10") == 0
    assert await h.v("women_borrower_share", "gender:other", "2024-01-10") is None  # empty
    # L2 fully repaid on 01-20: B no longer borrows in B1, still does (L3) overall
    assert await h.v("active_borrowers", "branch:B1", "2024-01-20") == 1
    assert await h.v("women_borrower_share", "branch:B1", "2024-01-20") == 1
    assert await h.v("active_borrowers", "all", "2024-01-20") == 3
    # U registers late: its history is restated with the loan's branch and product
    await h.send([reg("U", "2024-01-09", "B9", "female", True)])
    assert await h.v("active_borrowers", "branch:B3", "2024-01-10") == 1
    assert await h.v("active_borrowers", "product:P3", "2024-01-10") == 1
    assert await h.v("active_borrowers", "gender:unknown", "2024-01-10") == 0
    assert await h.v("women_borrower_share", "all", "2024-01-10") == Decimal(2) / Decimal(3)


async def test_par_aging_ties_and_end(harness: Harness) -> None:
    h = harness
    await h.send(
        [
            reg("D", "2024-01-01"),
            reg("E", "2024-01-01"),
            disb("L6", "D", "2024-01-01", "1000"),
            disb("L7", "E", "2024-01-01", "3000"),
            dpd("L6", "D", "2024-03-01", 10),
            dpd("L6", "D", "2024-03-25", 95),
            dpd("L6", "D", "2024-04-01", 0),
            dpd("L6", "D", "2024-04-01", 40),  # same as_of: the last received counts
            repay("L6", "D", "t1", "2024-04-10", "400"),
            close("L6", "D", "2024-06-01"),
        ]
    )
    # dpd ages from 10 on 03-01: 30 on 03-21, 31 on 03-22
    assert await h.v("par30", "all", "2024-03-21") == 0
    assert await h.v("par30", "all", "2024-03-22") == Decimal("0.25")
    assert await h.v("par90", "all", "2024-03-24") == 0
    assert await h.v("par90", "all", "2024-03-25") == Decimal("0.25")
    assert await h.v("par90", "all", "2024-03-31") == Decimal("0.25")  # 101 days
    assert await h.v("par90", "all", "2024-04-01") == 0  # 40 days
    assert await h.v("par30", "all", "2024-04-01") == Decimal("0.25")
    # 600 outstanding of 3600 after the repayment; 40 + 50 = 90 on 05-21, 91 on 05-22
    assert await h.v("par90", "all", "2024-05-21") == 0
    par90 = await h.value("par90", "all", "2024-05-22")
    assert (par90["numerator"], par90["denominator"]) == (600, 3600)
    assert par90["value"] == Decimal(1) / Decimal(6)
    assert await h.v("par30", "all", "2024-06-01") == 0  # ended loans are not at risk


async def test_write_off_ratio_mean_daily_portfolio(harness: Harness) -> None:
    h = harness
    await h.send(
        [
            reg("F", "2024-01-01"),
            disb("L8", "F", "2024-01-01", "1000"),
            writeoff("L8", "F", "2024-01-11", "1000"),
        ]
    )
    # portfolio 1000 on the 10 days 01-01..01-10 of the window: mean 10000 / 365
    v = await h.value("write_off_ratio", "all", "2024-01-11")
    assert v["numerator"] == 1000
    assert v["value"] == Decimal("36.5")
    assert abs(v["denominator"] - Decimal(10000) / Decimal(365)) < Decimal("1e-20")
    assert await h.v("gross_loan_portfolio", "all", "2024-01-11") == 0
    assert await h.v("write_off_ratio", "all", "2023-12-31") is None


async def test_disbursement_flows(harness: Harness) -> None:
    h = harness
    w, m = "W", "M"
    await h.send(
        [
            reg(w, "2024-01-01", "B1", "female", True),
            reg(m, "2024-01-01", "B1", "male", False),
            disb("F1", w, "2024-03-01", "100", loan_cycle=1, instalment_monthly="51",
                 household_income_monthly="100", other_active_lenders=3),
            disb("F2", m, "2024-03-02", "200", loan_cycle=1, instalment_monthly="50",
                 household_income_monthly="100", other_active_lenders=2),
            disb("F3", w, "2024-03-03", "300", loan_cycle=2, instalment_monthly="0",
                 household_income_monthly="100"),
            disb("F4", m, "2024-03-04", "400", instalment_monthly="10", other_active_lenders=5),
            disb("F2", m, "2024-03-02", "999"),  # a second disbursement of F2: ignored
        ]
    )  # fmt: skip
    dsti = await h.value("dsti_breach_share", "all", "2024-03-04")
    assert (dsti["numerator"], dsti["denominator"], dsti["value"]) == (1, 2, Decimal("0.5"))
    ml = await h.value("multi_lender_share", "all", "2024-03-04")
    assert (ml["numerator"], ml["denominator"]) == (2, 3)
    fc = await h.value("new_borrower_women_share", "all", "2024-03-04")
    assert (fc["numerator"], fc["denominator"]) == (1, 2)
    avg = await h.value("avg_disbursed_amount", "all", "2024-03-04")
    assert (avg["numerator"], avg["denominator"], avg["value"]) == (1000, 4, 250)
    depth = await h.value("avg_balance_gni_ratio", "all", "2024-03-04")  # GNI 1000
    assert (depth["numerator"], depth["denominator"], depth["value"]) == (
        1000, 2000, Decimal("0.5")
    )  # fmt: skip
    await h.tick(__import__("datetime").date(2024, 5, 31))
    # 30-day window 03-04..04-02: only F4, which has no income
    dsti = await h.value("dsti_breach_share", "all", "2024-04-02")
    assert (dsti["value"], dsti["denominator"]) == (None, 0)
    assert await h.v("multi_lender_share", "all", "2024-04-02") == 1
    # 90-day window 03-03..05-31: F3 and F4
    assert await h.v("avg_disbursed_amount", "all", "2024-05-31") == 350
    assert await h.v("new_borrower_women_share", "all", "2024-05-31") is None
    assert await h.v("avg_disbursed_amount", "gender:female", "2024-03-04") == 200
