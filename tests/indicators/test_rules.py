"""Rules across entities, hand-computed: inferred drop-outs (and their cancellation), complaints
(rate, SLA, quantiles, age, conduct share), duplicates, late events restating history."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.indicators.conftest import Harness
from tests.indicators.events import close, copen, cresolve, disb, exit_, reg, repay


async def test_inferred_dropouts_and_their_cancellation(harness: Harness) -> None:
    h = harness
    await h.send(
        [
            reg("G", "2024-01-01"), disb("LG", "G", "2024-01-01", "100"),
            close("LG", "G", "2024-02-01"),  # inferred exit on 02-01 + 90 = 05-01
            reg("H", "2024-01-01"), disb("LH1", "H", "2024-01-01", "100"),
            close("LH1", "H", "2024-02-01"),
            disb("LH2", "H", "2024-04-15", "100"),  # a later disbursement: no inferred exit
            reg("I", "2024-01-01"), disb("LI", "I", "2024-01-01", "100"),
            close("LI", "I", "2024-02-01"),
            exit_("I", "2024-06-01", "voluntary"),  # explicit exit: no inferred one
            reg("J", "2024-01-01"),  # never borrowed: never inferred
            reg("K", "2024-01-01"), disb("LK1", "K", "2024-01-01", "100"),
            close("LK1", "K", "2024-02-01"),
        ]
    )  # fmt: skip
    r = await h.get("/v1/indicators", code="active_clients", as_of="2024-06-02")
    assert r.status_code == 422  # after the business date (06-01, I's exit)
    await h.tick(date(2024, 7, 1))
    assert await h.v("active_clients", "all", "2024-04-30") == 5
    assert await h.v("active_clients", "all", "2024-05-01") == 3  # G and K inferred
    assert await h.v("active_clients", "all", "2024-06-01") == 2  # I exits explicitly
    dropout = await h.value("dropout_rate", "all", "2024-06-01")
    assert (dropout["numerator"], dropout["denominator"]) == (3, 5)
    # K borrows again (after its inferred exit date): the inferred exit never happened
    await h.send([disb("LK2", "K", "2024-06-15", "100")])
    assert await h.v("active_clients", "all", "2024-05-01") == 4
    await h.send([close("LK2", "K", "2024-06-20")])  # ends again: exit on 06-20 + 90
    assert await h.v("active_clients", "all", "2024-07-01") == 3
    await h.tick(date(2024, 9, 18))
    assert await h.v("active_clients", "all", "2024-09-17") == 3
    assert await h.v("active_clients", "all", "2024-09-18") == 2


async def test_complaints(harness: Harness) -> None:
    h = harness
    clients = [reg(f"c{i}", "2023-12-01", "B1") for i in range(5)] + [reg("c5", "2023-12-01", "B2")]
    await h.send(
        [
            *clients,
            copen("K1", "2024-01-01T10:00:00+00:00", "B1", "staff_misconduct"),
            cresolve("K1", "2024-01-11T22:00:00+00:00"),  # 10.5 days, in SLA
            copen("K2", "2024-01-05T00:00:00+00:00", "B2", "service_quality"),
            cresolve("K2", "2024-02-15T00:00:00+00:00"),  # 41 days: late
            copen("K3", "2024-01-10T12:00:00+03:00", "B1", "privacy"),  # open
            cresolve("K4", "2024-01-20T00:00:00+00:00"),  # before its opening: waits
            copen("K4", "2024-01-02T00:00:00+00:00", "B1", "fees"),  # 18 days
            cresolve("K1", "2024-01-20T00:00:00+00:00"),  # the earliest resolution counts
        ]
    )
    # 30-day window 2023-12-22..2024-01-20: all four opened
    rate = await h.value("complaints_per_1k_clients", "all", "2024-01-20")
    assert (rate["numerator"], rate["denominator"]) == (4, 6)
    assert rate["value"] == Decimal(4000) / Decimal(6)
    assert await h.v("complaints_per_1k_clients", "branch:B1", "2024-01-20") == 600
    assert await h.v("complaints_per_1k_clients", "branch:B2", "2024-01-20") == 1000
    # on 02-15: resolved K1, K4 (in SLA), K2 (late); K3 open 36 days > 30
    sla = await h.value("complaints_resolved_in_sla", "all", "2024-02-15")
    assert (sla["numerator"], sla["denominator"], sla["value"]) == (2, 4, Decimal("0.5"))
    assert await h.v("open_complaints_past_sla", "all", "2024-02-09") == 1  # K2 (35 days)
    assert await h.v("open_complaints_past_sla", "all", "2024-02-10") == 2  # + K3 (31 days)
    assert await h.v("open_complaints_past_sla", "all", "2024-02-15") == 1  # K2 resolved
    assert await h.v("open_complaints_past_sla", "branch:B2", "2024-02-15") == 0
    p50 = await h.value("complaint_resolution_days_p50", "all", "2024-02-15")
    assert (p50["value"], p50["n"], p50["numerator"]) == (18, 3, None)
    assert await h.v("complaint_resolution_days_p90", "all", "2024-02-15") == Decimal("36.4")
    assert await h.v("complaint_resolution_days_p50", "branch:B1", "2024-02-15") == Decimal("14.25")
    conduct = await h.value("conduct_complaint_share", "all", "2024-02-15")
    assert (conduct["numerator"], conduct["denominator"]) == (2, 4)


async def test_duplicates_count_once_whatever_their_content(harness: Harness) -> None:
    h = harness
    first = disb("LD", "A", "2024-01-01", "100", id_="dup-1")
    await h.send(
        [
            reg("A", "2024-01-01", id_="r-1"),
            reg("A", "2024-01-01", id_="r-1"),
            first,
            disb("LD2", "A", "2024-01-01", "900", id_="dup-1"),  # same id, other content
            repay("LD", "A", "t1", "2024-01-02", "10", id_="p-1"),
            repay("LD", "A", "t2", "2024-01-02", "10", id_="p-1"),
            reg("B", "2024-01-01", id_="r-1", source="test:other"),  # another source: counts
        ]
    )
    assert await h.v("active_clients", "all", "2024-01-02") == 2
    assert await h.v("gross_loan_portfolio", "all", "2024-01-02") == 90
    await h.send([first, repay("LD", "A", "t2", "2024-01-02", "10", id_="p-1")])  # again, later
    assert await h.v("gross_loan_portfolio", "all", "2024-01-02") == 90


async def test_late_events_restate_their_day_and_every_later_day(harness: Harness) -> None:
    h = harness
    await h.send([reg("A", "2024-01-01"), disb("L", "A", "2024-01-01", "1000")])
    await h.send([repay("L", "A", "t9", "2024-06-01", "100")])
    assert await h.v("gross_loan_portfolio", "all", "2024-03-01") == 1000
    await h.send([repay("L", "A", "t1", "2024-02-01", "250")])  # late
    assert await h.v("gross_loan_portfolio", "all", "2024-01-31") == 1000
    assert await h.v("gross_loan_portfolio", "all", "2024-03-01") == 750
    assert await h.v("gross_loan_portfolio", "all", "2024-06-01") == 650
    r = await h.get(
        "/v1/indicators/gross_loan_portfolio/series", **{"from": "2024-01-31", "to": "2024-02-02"}
    )
    assert [p["value"] for p in r.json()["points"]] == [1000, 750, 750]
