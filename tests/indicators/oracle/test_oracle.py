"""The oracle on tiny streams whose every number is worked out by hand in the comments."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

from contracts.envelope import CanonicalEvent
from tests.indicators.oracle.builders import (
    SRC,
    A,
    B,
    C,
    close,
    day,
    disb,
    ev,
    opened,
    reg,
    repay,
    resolved,
    ts,
)
from tests.indicators.oracle.generator import GenConfig, generate, pid
from tests.indicators.oracle.oracle import Oracle, Params, Value, percentile_cont


def val(o: Oracle, code: str, on: int, segment: str = "all") -> Value:
    return o.value(code, segment, day(on))


def same(got: Value, value: Fraction | int | None, num: int | str, den: int | str | None) -> bool:
    """Numerator and denominator exactly; the value to 1e-30 (it is a 50-digit division)."""
    exact = got.numerator == Decimal(num) and (
        got.denominator is None if den is None else got.denominator == Decimal(den)
    )
    if value is None or got.value is None:
        return exact and value is None and got.value is None
    return exact and abs(Fraction(got.value) - Fraction(value)) < Fraction(1, 10**30)


def test_duplicates_count_once_and_the_first_received_wins() -> None:
    first = disb(A, "L1", 0, "1000", id_="same")
    altered = disb(A, "L1", 0, "5000", id_="same")
    other_source = disb(A, "L1", 0, "7000", id_="same", branch_id="B2")  # another source's L1
    other = CanonicalEvent.model_validate({**other_source.model_dump(), "source": "core:other"})
    o = Oracle([reg(A, 0), first, altered, other])
    # L1 of core:test = 1000 (the altered copy is ignored); core:other's L1 is another loan
    assert val(o, "gross_loan_portfolio", 5).numerator == Decimal(8000)
    assert val(o, "gross_loan_portfolio", 5, "branch:B1").numerator == Decimal(1000)
    assert val(o, "active_borrowers", 5).value == 1  # one client, two loans


def test_registration_earliest_day_latest_attributes_ties_last_received() -> None:
    stream = [
        reg(A, 10, branch="B1", gender="female", rural=True),
        reg(A, 5, branch="B2", gender="male"),  # earlier: registers A from day 5
        reg(A, 20, branch="B3", gender="other", rural=False),
        reg(A, 20, branch="B4", gender="female", rural=True),  # tie on day 20: last received
    ]
    o = Oracle(stream)
    assert val(o, "active_clients", 4).value == 0
    assert val(o, "active_clients", 5).value == 1
    # B4/female/rural for all days, even before the registration that says so
    assert val(o, "active_clients", 6, "branch:B4").value == 1
    assert val(o, "active_clients", 6, "branch:B2").value == 0
    assert val(o, "active_clients", 6, "rural:true").value == 1
    assert o.segments("active_clients") == {"all", "branch:B4", "gender:female", "rural:true"}


def test_explicit_exit_earliest_counts_and_unregistered_exits_are_ignored() -> None:
    exits = [
        ev(
            "client.exited",
            client_pid=A,
            exited_on=day(30),
            exit_type="voluntary",
            reason_code="r1",
        ),
        ev("client.exited", client_pid=A, exited_on=day(20), exit_type="deceased", reason_code="d"),
        ev(
            "client.exited",
            client_pid=C,
            exited_on=day(20),
            exit_type="voluntary",
            reason_code="r1",
        ),
    ]
    o = Oracle([reg(A, 0), reg(B, 0, gender="male"), *exits])
    assert val(o, "active_clients", 19).value == 2
    assert val(o, "active_clients", 20).value == 1  # A left on day 20 (the earliest exit)
    # dropout as of day 100: window = days -264..100; denominator = active on day -265 (0)
    # + registered in window (2); the only exit is deceased -> 0 drop-outs
    assert val(o, "dropout_rate", 100) == Value(Decimal(0), Decimal(0), Decimal(2))
    assert val(o, "client_retention_rate", 100).value == Decimal("0.5")
    # exit reasons over 90 days as of day 100 (days 11..100): A's exit (reason d); C ignored
    assert val(o, "exit_reason_share.d", 100).value == 1
    assert val(o, "exit_reason_share.r1", 100).value == 0
    assert val(o, "exit_reason_share.d", 110).value is None  # window 21..110: no exit
    assert o.exit_reasons() == {"d"}


def test_inferred_exit_after_the_delay_unless_a_later_loan_or_an_explicit_exit() -> None:
    stream = [
        reg(A, 0),
        reg(B, 0, gender="male"),
        reg(C, 0, gender="male"),
        disb(A, "LA", 0),
        close(A, "LA", 50),  # A: inferred exit on 50 + 90 = 140
        disb(B, "LB1", 0),
        close(B, "LB1", 50),
        disb(B, "LB2", 400),  # B: a much later loan cancels the inferred exit
        close(B, "LB2", 500),  # ... and B's new last loan ends on 500 -> exit on 590
        disb(C, "LC", 0),
        close(C, "LC", 50),
        ev("client.exited", client_pid=C, exited_on=day(300), exit_type="voluntary"),
    ]
    o = Oracle(stream)
    assert val(o, "active_clients", 139).value == 3
    assert val(o, "active_clients", 140).value == 2  # A gone
    assert val(o, "active_clients", 299).value == 2
    assert val(o, "active_clients", 300).value == 1  # C's explicit exit, not an inferred one
    assert val(o, "active_clients", 589).value == 1
    assert val(o, "active_clients", 590).value == 0
    # dropout as of day 364 (window 0..364): 0 active before, 3 registered; exits: A(140), C(300)
    assert same(val(o, "dropout_rate", 364), Fraction(2, 3), 2, 3)
    # custom delay
    o30 = Oracle(stream, Params(dropout_delay_days=30))
    assert val(o30, "active_clients", 80).value == 2


def test_client_without_loans_is_never_inferred_to_exit_and_open_loan_blocks_it() -> None:
    stream = [reg(A, 0), reg(B, 0), disb(B, "L1", 0), disb(B, "L2", 10), close(B, "L1", 20)]
    o = Oracle(stream)
    assert val(o, "active_clients", 1000).value == 2


def test_outstanding_reversals_either_order_floor_and_end() -> None:
    rev = ev("loan.transaction_reversed", client_pid=A, loan_id="L1", transaction_id="T2",
             reversed_on=day(25))  # fmt: skip
    stream = [
        reg(A, 0),
        rev,  # arrives before the repayment it reverses
        disb(A, "L1", 0, "1000"),
        repay(A, "L1", "T1", 10, "300"),
        repay(A, "L1", "T2", 20, "200"),  # reversed: as if it never happened
        repay(A, "L1", "T3", 30, "800"),  # 1100 paid in total: floored at zero
        disb(A, "L2", 0, "500"),
        repay(A, "L2", "T9", 5, "500"),  # fully repaid, never closed: open, 0 outstanding
        disb(A, "L3", 0, "400"),
        ev(
            "loan.written_off",
            client_pid=A,
            loan_id="L3",
            principal_written_off="400",
            written_off_on=day(15),
        ),  # fmt: skip
        close(A, "L3", 40, "written_off"),
    ]
    o = Oracle(stream)
    assert val(o, "gross_loan_portfolio", 0).value == 1900
    assert val(o, "gross_loan_portfolio", 10).value == 700 + 0 + 400
    assert val(o, "gross_loan_portfolio", 14).value == 1100
    assert val(o, "gross_loan_portfolio", 15).value == 700  # L3 ended on its write-off day
    assert val(o, "gross_loan_portfolio", 20).value == 700  # T2 reversed
    assert val(o, "gross_loan_portfolio", 30).value == 0
    assert val(o, "active_borrowers", 29).value == 1
    assert val(o, "active_borrowers", 30).value == 0  # L2 still open but nothing outstanding
    assert val(o, "active_clients", 1000).value == 1  # L2 never ended: no inferred exit


def test_days_past_due_ages_and_par_uses_strictly_greater() -> None:
    stream = [
        reg(A, 0),
        disb(A, "L1", 0, "1000"),
        disb(A, "L2", 0, "3000"),
        ev("loan.delinquency", client_pid=A, loan_id="L1", as_of=day(10), days_past_due=20),
        ev("loan.delinquency", client_pid=A, loan_id="L1", as_of=day(40), days_past_due=0),
        ev("loan.delinquency", client_pid=A, loan_id="L1", as_of=day(40), days_past_due=5),
        ev("loan.delinquency", client_pid=A, loan_id="L2", as_of=day(50), days_past_due=0),
    ]
    o = Oracle(stream)
    # L1: 20 dpd on day 10 -> 30 on day 20 (not > 30) -> 31 on day 21
    assert val(o, "par30", 20).numerator == 0
    assert val(o, "par30", 21) == Value(Decimal("0.25"), Decimal(1000), Decimal(4000))
    assert val(o, "par90", 21).numerator == 0
    # day 40: tie on as_of, last received (5 dpd) wins -> 5 + (D - 40); > 30 again on day 66
    assert val(o, "par30", 40).numerator == 0
    assert val(o, "par30", 65).numerator == 0
    assert val(o, "par30", 66).numerator == 1000
    assert o.days_past_due(o.loans[(SRC, "L2")], day(500)) == 0  # zero stays zero


def test_write_off_ratio_divides_by_the_mean_daily_portfolio() -> None:
    stream = [
        reg(A, 0),
        disb(A, "L1", 0, "730"),
        ev(
            "loan.written_off",
            client_pid=A,
            loan_id="L1",
            principal_written_off="730",
            written_off_on=day(100),
        ),  # fmt: skip
    ]
    o = Oracle(stream)
    # as of day 364: window 0..364; portfolio 730 on days 0..99 (100 days), then 0
    # mean = 730 * 100 / 365 = 200; ratio = 730 / 200
    v = val(o, "write_off_ratio", 364)
    assert (v.numerator, v.denominator, v.value) == (Decimal(730), Decimal(200), Decimal("3.65"))
    # as of day 50: window -314..50; portfolio on days 0..50 only: 730 * 51 / 365 = 102
    assert val(o, "write_off_ratio", 50) == Value(Decimal(0), Decimal(0), Decimal(102))
    assert val(o, "write_off_ratio", 500).denominator == 0  # window 136..500: empty portfolio
    assert val(o, "write_off_ratio", 500).value is None


def test_disbursement_flows_dsti_exact_multi_lender_first_cycle_average() -> None:
    stream = [
        reg(A, 0),
        reg(B, 0, gender="male"),
        # exactly at the limit: 500 / 1000 = 0.5 is not > 0.5
        disb(
            A,
            "L1",
            10,
            "100",
            instalment_monthly="500",
            household_income_monthly="1000",
            loan_cycle=1,
            other_active_lenders=3,
        ),  # fmt: skip
        # one cent over
        disb(
            B,
            "L2",
            10,
            "200",
            instalment_monthly="500.01",
            household_income_monthly="1000",
            loan_cycle=1,
            other_active_lenders=2,
        ),  # fmt: skip
        # income 0: not in the DSTI denominator; no lenders field; no cycle: not first cycle
        disb(A, "L3", 20, "300", instalment_monthly="10", household_income_monthly="0"),
        disb(B, "L4", 50, "400", instalment_monthly="10", loan_cycle=2),
    ]
    o = Oracle(stream)
    assert val(o, "dsti_breach_share", 29) == Value(Decimal("0.5"), Decimal(1), Decimal(2))
    assert val(o, "dsti_breach_share", 40) == Value(None, Decimal(0), Decimal(0))  # 11..40
    assert val(o, "dsti_breach_share", 39).denominator == 2  # window 10..39
    assert val(o, "multi_lender_share", 29) == Value(Decimal("0.5"), Decimal(1), Decimal(2))
    assert (
        Oracle(stream, Params(lender_count=2)).value("multi_lender_share", "all", day(29)).value
        == 1
    )
    assert (
        Oracle(stream, Params(dsti_limit=Decimal("0.6")))
        .value("dsti_breach_share", "all", day(29))
        .numerator
        == 0
    )
    assert val(o, "new_borrower_women_share", 60) == Value(Decimal("0.5"), Decimal(1), Decimal(2))
    assert val(o, "new_borrower_women_share", 60, "gender:male").value == 0
    assert val(o, "avg_disbursed_amount", 60) == Value(Decimal(250), Decimal(1000), Decimal(4))
    assert val(o, "avg_disbursed_amount", 99).denominator == 4  # window 10..99
    assert val(o, "avg_disbursed_amount", 100) == Value(Decimal(350), Decimal(700), Decimal(2))


def test_shares_and_segments_of_borrowers_unregistered_clients_count_in_all_and_unknown() -> None:
    stream = [
        reg(A, 0, branch="B1", gender="female", rural=True),
        reg(B, 0, branch="B1", gender="male"),  # no rural flag
        disb(A, "LA", 0, "100", branch_id="B2", product_id="P1"),  # loan in another branch
        disb(A, "LA2", 0, "100", branch_id="B1", product_id="P2"),
        disb(B, "LB", 0, "100", branch_id="B1", product_id="P1"),
        disb(C, "LC", 0, "100", branch_id="B1", product_id="P1"),  # C never registered
    ]
    o = Oracle(stream, Params(gni_per_capita=Decimal(50)))
    assert val(o, "active_borrowers", 1) == Value(Decimal(3), Decimal(3), None)
    # C's loan counts in its own branch and product (they are the loan's), not in rural:
    assert val(o, "active_borrowers", 1, "branch:B1").value == 3  # A (LA2), B and C
    assert val(o, "active_borrowers", 1, "branch:B2").value == 1
    assert val(o, "active_borrowers", 1, "gender:unknown").value == 1  # C
    assert val(o, "active_borrowers", 1, "product:P1").value == 3  # A, B and C
    assert val(o, "gross_loan_portfolio", 1, "branch:B1").value == 300
    # A rural; B without a flag and C unregistered: the denominator only
    assert same(val(o, "rural_borrower_share", 1, "branch:B1"), Fraction(1, 3), 1, 3)
    assert same(val(o, "women_borrower_share", 1), Fraction(1, 3), 1, 3)
    assert same(val(o, "rural_borrower_share", 1), Fraction(1, 3), 1, 3)
    assert val(o, "rural_borrower_share", 1, "rural:false").value is None
    # 400 / (3 borrowers * 50)
    assert same(val(o, "avg_balance_gni_ratio", 1), Fraction(400, 150), 400, 150)
    assert Oracle(stream).value("avg_balance_gni_ratio", "all", day(1)).value is None
    assert o.segments("par30") == {
        "all", "branch:B1", "branch:B2", "product:P1", "product:P2",
        "gender:female", "gender:male", "gender:unknown", "rural:true",
    }  # fmt: skip


def pov(who: str, on: int, likelihood: str, line: str = "national") -> CanonicalEvent:
    return ev("poverty.assessed", client_pid=who, tool="PPI", poverty_line=line,
              likelihood=likelihood, assessed_on=day(on))  # fmt: skip


def test_poverty_outreach_mean_likelihood_in_90_days() -> None:
    stream = [
        reg(A, 0, branch="B1"),
        pov(A, 0, "0.2"),
        pov(A, 80, "0.5"),
        pov(C, 85, "0.8"),  # C never registered
    ]
    o = Oracle(stream)
    assert val(o, "poverty_outreach_entry", 89) == Value(Decimal("0.5"), Decimal("1.5"), Decimal(3))
    assert val(o, "poverty_outreach_entry", 90) == Value(
        Decimal("0.65"), Decimal("1.3"), Decimal(2)
    )
    assert val(o, "poverty_outreach_entry", 90, "branch:B1").value == Decimal("0.5")
    assert val(o, "poverty_outreach_entry", 90, "gender:unknown").value == Decimal("0.8")
    # the primary line has both codes, with equal values
    assert val(o, "poverty_outreach_entry.national", 90) == val(o, "poverty_outreach_entry", 90)


def test_poverty_lines_are_never_averaged_together() -> None:
    stream = [
        reg(A, 0),
        pov(A, 1, "0.2"),
        pov(A, 2, "0.6", line="usd_3.20"),  # a line with a dot: split at the first one
        pov(A, 3, "0.4", line="usd_3.20"),
    ]
    o = Oracle(stream)
    assert val(o, "poverty_outreach_entry", 10) == Value(Decimal("0.2"), Decimal("0.2"), Decimal(1))
    assert val(o, "poverty_outreach_entry.usd_3.20", 10) == Value(
        Decimal("0.5"), Decimal("1.0"), Decimal(2)
    )
    assert o.codes().count("poverty_outreach_entry.usd_3.20") == 1
    # another primary line: its codes are listed before any assessment uses it
    other = Oracle(stream, Params(poverty_line="ppp_2017"))
    assert "poverty_outreach_entry.ppp_2017" in other.codes()
    assert other.value("poverty_outreach_entry", "all", day(10)) == Value(
        None, Decimal(0), Decimal(0)
    )
    assert other.value("poverty_outreach_entry.national", "all", day(10)).value == Decimal("0.2")


def test_complaints_sla_ages_quantiles_and_resolution_before_opening() -> None:
    eat = timezone(timedelta(hours=3))
    stream = [
        reg(A, 0, branch="B1"),
        reg(B, 0, branch="B2"),
        resolved("K1", ts(10, 12)),  # arrives first; waits for its opening
        opened("K1", ts(0, 12)),  # 10 days
        opened("K2", ts(0, 0), category="privacy"),
        resolved("K2", ts(31, 6)),  # 31.25 days: resolved day - opened day = 31 > 30
        resolved("K2", ts(40)),  # a later resolution: the earliest counts
        opened("K3", datetime(2024, 1, 2, 1, tzinfo=eat), branch="B2"),  # 01-01T22:00Z: day 0
        opened("K3", ts(5), branch="B1", category="privacy"),  # second opening: ignored
        opened("K4", ts(2), branch="B2", category="hidden_fees"),
        resolved("K4", ts(4)),  # 2 days
        resolved("K9", ts(4)),  # never opened: ignored
    ]
    o = Oracle(stream)
    assert o.complaints[(SRC, "K3")].opened_day == day(0)
    assert val(o, "open_complaints_past_sla", 30).value == 0  # K2 and K3 are 30 days old
    # day 31: K2 resolved on 31 (not open); K3 opened day 0, age 31 > 30 -> 1
    assert val(o, "open_complaints_past_sla", 31) == Value(Decimal(1), Decimal(1), None)
    assert val(o, "open_complaints_past_sla", 31, "branch:B1").value == 0
    # as of 31 (window -58..31): resolved K1 (10 d, in SLA), K2 (31 d, late), K4 (2 d) = 3
    # + open past SLA K3 -> 2 / 4
    assert val(o, "complaints_resolved_in_sla", 31) == Value(Decimal("0.5"), Decimal(2), Decimal(4))
    p50 = val(o, "complaint_resolution_days_p50", 31)
    assert p50 == Value(Decimal(10), None, None, 3)
    # p90 of [2, 10, 31.25]: pos 1.8 -> 10 + 0.8 * 21.25 = 27
    assert val(o, "complaint_resolution_days_p90", 31).value == Decimal(27)
    assert val(o, "complaint_resolution_days_p90", 500) == Value(None, None, None, 0)
    # conduct share as of day 5: K1 fees, K2 privacy, K3 fees (first opening), K4 hidden_fees
    assert val(o, "conduct_complaint_share", 5) == Value(Decimal("0.5"), Decimal(2), Decimal(4))
    # per 1k clients, by branch: B2 has K3, K4 and one active client (B)
    assert val(o, "complaints_per_1k_clients", 5, "branch:B2") == Value(
        Decimal(2000), Decimal(2), Decimal(1)
    )
    assert val(o, "complaints_per_1k_clients", 5) == Value(Decimal(2000), Decimal(4), Decimal(2))
    assert o.segments("conduct_complaint_share") == {"all", "branch:B1", "branch:B2"}


def test_percentile_cont_matches_postgresql() -> None:
    # SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY x) FROM (VALUES (1),(2),(3),(4)) t(x)
    # -> 3.7; percentile_cont(0.5) -> 2.5
    xs = [Fraction(v) for v in (4, 1, 3, 2)]
    assert percentile_cont(xs, Fraction(9, 10)) == Fraction(37, 10)
    assert percentile_cont(xs, Fraction(1, 2)) == Fraction(5, 2)
    assert percentile_cont([Fraction(7)], Fraction(9, 10)) == 7


def test_timezone_setting_moves_the_business_day() -> None:
    stream = [opened("K1", datetime(2024, 1, 1, 22, 30, tzinfo=UTC))]
    assert Oracle(stream).complaints[(SRC, "K1")].opened_day == date(2024, 1, 1)
    nairobi = Oracle(stream, Params(timezone="Africa/Nairobi"))
    assert nairobi.complaints[(SRC, "K1")].opened_day == date(2024, 1, 2)


T_REV = "spm.loan.transaction_reversed.v1"


def test_generator_is_deterministic_and_has_every_feature() -> None:
    cfg = GenConfig(seed=7, n_events=12_000)
    events = list(generate(cfg))
    assert [e.id for e in events[:500]] == [e.id for e in itertools.islice(generate(cfg), 500)]
    assert len(events) == 12_000
    types = Counter(e.type for e in events)
    assert len(types) == 11
    keys = Counter((e.source, e.id) for e in events)
    dup_keys = {k for k, n in keys.items() if n > 1}
    assert dup_keys
    by_key: dict[tuple[str, str], list[CanonicalEvent]] = {}
    for e in events:
        by_key.setdefault((e.source, e.id), []).append(e)
    assert any(v[0].data != v[1].data for v in by_key.values() if len(v) > 1)
    # duplicates keep their partition key, so "first received" is well defined per partition
    assert all(len({e.partitionkey for e in v}) == 1 for v in by_key.values())
    # late events: business day long before arrival
    o = Oracle(events)
    late = [e for e in events if (e.time.date() - o._event_day(e.type, e.data)).days > 60]
    assert late
    # reversals that arrive before their repayment; resolutions before their opening
    pos = {(e.source, e.id): i for i, e in reversed(list(enumerate(events)))}
    repay_pos = {
        (e.source, e.data.loan_id, e.data.transaction_id): pos[(e.source, e.id)]  # type: ignore[attr-defined]
        for e in events
        if e.type == "spm.loan.repayment.v1"
    }
    assert any(
        pos[(e.source, e.id)] < repay_pos.get((e.source, e.data.loan_id, e.data.transaction_id), -1)  # type: ignore[attr-defined]
        for e in events
        if e.type == "spm.loan.transaction_reversed.v1"
    )
    open_pos = {
        e.data.complaint_id: pos[(e.source, e.id)]  # type: ignore[attr-defined]
        for e in events
        if e.type == "spm.complaint.opened.v1"
    }
    assert any(
        pos[(e.source, e.id)] < open_pos.get(e.data.complaint_id, -1)  # type: ignore[attr-defined]
        for e in events
        if e.type == "spm.complaint.resolved.v1"
    )
    # corrections: disbursals undone and done again, before and after repayments, undone for
    # good, reversals overtaking the disbursal they cancel, write-offs undone after the exit
    tx_of: dict[tuple[str, str, str], list[tuple[int, CanonicalEvent]]] = {}
    for e in events:
        tx = getattr(e.data, "transaction_id", None)
        if tx is not None:
            tx_of.setdefault((e.source, e.data.loan_id, tx), []).append(  # type: ignore[attr-defined]
                (pos[(e.source, e.id)], e)
            )
    undone = [v for v in tx_of.values() if any(e.type == T_REV for _, e in v)]
    undone_disb = [v for v in undone if any(e.type == "spm.loan.disbursed.v1" for _, e in v)]
    assert len(undone_disb) >= 5
    assert any(  # the reversal arrived first
        min(p for p, e in v if e.type == T_REV) < min(p for p, e in v if e.type != T_REV)
        for v in undone_disb
    )
    first_repayment = {
        (e.source, e.data.loan_id): e.data.value_date  # type: ignore[attr-defined]
        for e in sorted(
            (e for e in events if e.type == "spm.loan.repayment.v1"),
            key=lambda e: e.data.value_date,  # type: ignore[attr-defined]
            reverse=True,
        )
    }
    undo_days = [
        (next(e for _, e in v if e.type == T_REV).data.reversed_on, first_repayment.get(k[:2]))  # type: ignore[attr-defined]
        for k, v in tx_of.items()
        if v in undone_disb
    ]
    assert any(r is not None and u < r for u, r in undo_days)  # undone before repayments
    assert any(r is not None and u > r for u, r in undo_days)  # and after
    redone = {k[:2] for k in tx_of if tx_of[k] in undone_disb} & set(o.loans)
    assert redone and {k[:2] for k in tx_of if tx_of[k] in undone_disb} - set(o.loans)
    undone_woff = [
        (next(e for _, e in v if e.type == "spm.loan.written_off.v1"), next(
            e for _, e in v if e.type == T_REV))
        for v in undone
        if any(e.type == "spm.loan.written_off.v1" for _, e in v)
    ]  # fmt: skip
    assert any(  # undone after the client's inferred exit (written off + 90 days)
        (r.data.reversed_on - w.data.written_off_on).days > 90  # type: ignore[attr-defined]
        for w, r in undone_woff
    )
    assert any(c.exit_type == "inferred" for c in o.clients.values())
    assert any(c.exit_type == "deceased" for c in o.clients.values())
    assert any(loan.client_pid not in o.clients for loan in o.loans.values())
    assert len({loan.key[0] for loan in o.loans.values()}) == 2
    assert len({loan.key[1] for loan in o.loans.values()}) < len(o.loans)  # same id, 2 sources


def test_comparison_reports_the_first_differing_value_and_tolerates_only_rounding() -> None:
    from tests.indicators.oracle.harness import compare_day, report

    stream = [reg(A, 0), reg(B, 0, gender="male"), disb(A, "L1", 0, "1000"), disb(B, "L2", 0)]
    o = Oracle(stream)
    d = day(10)

    def as_api(v: Value) -> dict[str, Any]:
        return {"value": v.value, "numerator": v.numerator, "denominator": v.denominator, "n": v.n}

    api = {(c, s): as_api(o.value(c, s, d)) for c in o.codes() for s in o.segments(c)}
    assert compare_day(o, d, api) == []
    share = ("women_borrower_share", "all")
    api[share] = dict(api[share], value=Decimal("0.5000000000001"))  # rounding: accepted
    assert compare_day(o, d, api) == []
    api[share] = dict(api[share], value=Decimal("0.50001"))
    api[("gross_loan_portfolio", "all")] = dict(
        api[("gross_loan_portfolio", "all")], numerator=Decimal("1999.99")
    )
    del api[("active_borrowers", "gender:male")]
    api[("par30", "branch:ZZ")] = {"value": Decimal(0), "numerator": 0, "denominator": 0}
    mismatches = compare_day(o, d, api)
    assert [(m.code, m.segment, m.field) for m in mismatches] == [
        ("active_borrowers", "gender:male", "missing"),
        ("gross_loan_portfolio", "all", "numerator"),
        ("par30", "branch:ZZ", "value"),  # an empty segment has a null ratio, not 0
        ("women_borrower_share", "all", "value"),
    ]
    text = report(mismatches, len(api))
    assert "first: active_borrowers [gender:male] on 2024-01-11: missing" in text


# --- corrections (contract v1.1) ------------------------------------------------------------


def rev(who: str, loan: str, tx: str, on: int) -> CanonicalEvent:
    return ev("loan.transaction_reversed", client_pid=who, loan_id=loan, transaction_id=tx,
              reversed_on=day(on))  # fmt: skip


def woff(who: str, loan: str, on: int, amount: str, tx: str | None = None) -> CanonicalEvent:
    return ev("loan.written_off", client_pid=who, loan_id=loan, principal_written_off=amount,
              written_off_on=day(on), transaction_id=tx)  # fmt: skip


def correction_streams() -> dict[str, list[CanonicalEvent]]:
    """Hand-made undo-and-redo sequences, each in its arrival order (used against the engine
    too, in tests/indicators/test_corrections.py)."""
    d, e = pid(1, 4), pid(1, 5)
    return {
        # the reversal arrives before the disbursal it cancels; repayments before the redo
        "redo": [
            reg(A, 0, branch="B1", gender="female", rural=True),
            rev(A, "L1", "D1", 5),
            disb(A, "L1", 0, "1000", transaction_id="D1", loan_cycle=1),
            repay(A, "L1", "T1", 10, "100"),
            disb(A, "L1", 2, "800", transaction_id="D2", branch_id="B2", product_id="P2"),
            repay(A, "L1", "T2", 20, "300"),
            disb(A, "L1", 4, "9999", transaction_id="D3"),  # later: kept, not in force
        ],
        # every disbursal undone (after a repayment and a closure): the loan does not exist,
        # and the client, who never borrowed, is never inferred to exit; then a redo
        "undone": [
            reg(B, 0, gender="male"),
            disb(B, "L2", 0, "500", transaction_id="X1"),
            repay(B, "L2", "T3", 5, "100"),
            close(B, "L2", 30),
            rev(B, "L2", "X1", 40),
        ],
        "undone_redo": [
            reg(B, 0, gender="male"),
            disb(B, "L2", 0, "500", transaction_id="X1"),
            repay(B, "L2", "T3", 5, "100"),
            close(B, "L2", 30),
            rev(B, "L2", "X1", 40),
            disb(B, "L2", 3, "600", transaction_id="X2"),
        ],
        # a write-off undone after the loan's inferred exit: open again, days past due ageing;
        # then written off again
        "write_off": [
            reg(C, 0, gender="male", rural=False),
            disb(C, "L3", 0, "1000"),
            ev("loan.delinquency", client_pid=C, loan_id="L3", as_of=day(40), days_past_due=35),
            woff(C, "L3", 50, "1000", "W1"),
            rev(C, "L3", "W1", 200),
            woff(C, "L3", 250, "900", "W2"),
            repay(C, "L3", "T9", 100, "100"),
        ],
        # write-offs of loans with no disbursal in force: by the write-off's own client
        "loose": [
            reg(d, 0, branch="B1", gender="female", rural=True),
            woff(d, "L9", 10, "200"),
            woff(e, "L8", 12, "50"),  # e never registered
            disb(d, "L7", 0, "100", transaction_id="Z1"),
            woff(d, "L7", 11, "30", "Z2"),
            rev(d, "L7", "Z1", 11),  # L7's disbursal undone: its write-off is loose too
        ],
    }


def test_an_undone_disbursal_is_replaced_by_the_redo_whatever_the_arrival_order() -> None:
    o = Oracle(correction_streams()["redo"])
    # D1 is cancelled although it arrived after its reversal; D2 (800, day 2, B2/P2) is in
    # force; T1 (day 10) counts although it arrived before D2; D3 is later: not in force
    assert val(o, "gross_loan_portfolio", 1).value == 0
    assert val(o, "gross_loan_portfolio", 2).value == 800
    assert val(o, "gross_loan_portfolio", 10).value == 700
    assert val(o, "gross_loan_portfolio", 20).value == 400
    assert val(o, "gross_loan_portfolio", 20, "branch:B1").value == 0
    assert val(o, "gross_loan_portfolio", 20, "product:P2").value == 400
    assert val(o, "avg_disbursed_amount", 10) == Value(Decimal(800), Decimal(800), Decimal(1))
    assert val(o, "new_borrower_women_share", 10).denominator == 0  # D2 has no loan_cycle
    for order in itertools.permutations(correction_streams()["redo"][1:4]):
        stream = [correction_streams()["redo"][0], *order, *correction_streams()["redo"][4:]]
        assert Oracle(stream).value("gross_loan_portfolio", "all", day(20)).value == 400


def test_a_loan_whose_every_disbursal_is_undone_does_not_exist_until_a_redo() -> None:
    streams = correction_streams()
    o = Oracle(streams["undone"])
    assert all(val(o, "gross_loan_portfolio", n).value == 0 for n in (0, 5, 29, 40))
    assert val(o, "avg_disbursed_amount", 10).denominator == 0
    assert val(o, "active_clients", 500).value == 1  # never borrowed: no inferred exit
    redo = Oracle(streams["undone_redo"])
    assert val(redo, "gross_loan_portfolio", 2).value == 0
    assert val(redo, "gross_loan_portfolio", 3).value == 600
    assert val(redo, "gross_loan_portfolio", 5).value == 500  # T3, kept, counts now
    assert val(redo, "gross_loan_portfolio", 30).value == 0  # the closure was never undone
    assert val(redo, "active_clients", 119).value == 1
    assert val(redo, "active_clients", 120).value == 0  # inferred exit on 30 + 90


def test_an_undone_write_off_reopens_the_loan_after_its_inferred_exit() -> None:
    o = Oracle(correction_streams()["write_off"])
    # W1 undone: the loan did not end on day 50; days past due age from 35 on day 40
    assert val(o, "gross_loan_portfolio", 60).value == 1000
    assert val(o, "gross_loan_portfolio", 100).value == 900
    assert val(o, "par30", 60).numerator == 1000
    assert val(o, "par90", 95).numerator == 0  # 35 + 55 = 90: not > 90
    assert val(o, "par90", 96).numerator == 1000
    assert val(o, "active_clients", 200).value == 1  # no inferred exit on 50 + 90
    assert val(o, "active_clients", 339).value == 1
    assert val(o, "active_clients", 340).value == 0  # W2 ends the loan on 250: exit on 340
    assert val(o, "gross_loan_portfolio", 250).value == 0
    # write_off_ratio as of day 364: only W2 (900) written off
    assert val(o, "write_off_ratio", 364).numerator == 900
    assert val(o, "write_off_ratio", 100).numerator == 0


def test_write_offs_of_a_loan_without_a_disbursal_count_by_their_own_client() -> None:
    o = Oracle(correction_streams()["loose"])
    d, e = pid(1, 4), pid(1, 5)
    assert o.loans == {}
    assert val(o, "write_off_ratio", 20).numerator == 280
    assert val(o, "write_off_ratio", 20, "gender:female").numerator == 230
    assert val(o, "write_off_ratio", 20, "rural:true").numerator == 230
    assert val(o, "write_off_ratio", 20, "gender:unknown").numerator == 50
    assert val(o, "write_off_ratio", 20, "branch:B1").numerator == 0
    assert val(o, "write_off_ratio", 20).value is None  # no portfolio
    assert {"gender:female", "rural:true", "gender:unknown"} <= o.segments("write_off_ratio")
    assert val(o, "active_clients", 500).value == 1  # d never borrowed: no inferred exit
    assert d in o.clients and e not in o.clients
