"""Client indicators, hand-computed: active clients, re-registration restating history, earliest
exit, drop-out and retention, exit reasons, poverty outreach."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

import pytest

from tests.indicators.conftest import Harness
from tests.indicators.events import assess, exit_, reg


async def test_active_clients_restated_by_reregistration_and_earliest_exit(
    harness: Harness,
) -> None:
    await harness.send(
        [
            reg("A", "2024-01-10", "B1", "female", True),
            reg("B", "2024-01-20", "B2", "male", False),
            reg("C", "2024-02-01", "B1", "female", None),
            exit_("B", "2024-02-15", "voluntary", "moved"),
            exit_("B", "2024-02-10", "involuntary", "fraud"),
            exit_("X", "2024-01-15", "voluntary", "moved"),  # never registered: ignored
            reg("C", "2024-03-01", "B2", "male", True),  # latest registration: all days
        ]
    )
    h = harness
    assert await h.v("active_clients", "all", "2024-01-09") == 0
    assert await h.v("active_clients", "all", "2024-02-05") == 3
    assert await h.v("active_clients", "all", "2024-02-09") == 3
    assert await h.v("active_clients", "all", "2024-02-10") == 2  # B's earliest exit
    assert await h.v("active_clients", "branch:B1", "2024-02-05") == 1  # C counts in B2
    assert await h.v("active_clients", "branch:B2", "2024-02-05") == 2
    assert await h.v("active_clients", "gender:male", "2024-02-05") == 2
    assert await h.v("active_clients", "rural:true", "2024-02-05") == 2
    assert await h.v("active_clients", "rural:false", "2024-02-05") == 1
    # business date = the largest event date = C's re-registration
    r = await h.get("/v1/indicators", code="active_clients", segment="all")
    assert r.json()["as_of"] == "2024-03-01"
    # 365-day window 2023-03-03..2024-03-01: nobody active before; 3 registered; B exited.
    dropout = await h.value("dropout_rate", "all", "2024-03-01")
    assert (dropout["numerator"], dropout["denominator"]) == (1, 3)
    assert dropout["value"] == Decimal(1) / Decimal(3)
    retention = await h.value("client_retention_rate", "all", "2024-03-01")
    assert (retention["numerator"], retention["denominator"]) == (2, 3)
    # exit reasons: only B's earliest exit (fraud) counts; "moved" is a seen code with 0
    fraud = await h.value("exit_reason_share.fraud", "all", "2024-03-01")
    assert (fraud["value"], fraud["numerator"], fraud["denominator"]) == (1, 1, 1)
    assert await h.v("exit_reason_share.moved", "all", "2024-03-01") == 0
    assert await h.v("exit_reason_share.fraud", "branch:B2", "2024-03-01") == 1
    assert await h.v("exit_reason_share.fraud", "branch:B1", "2024-03-01") is None


async def test_poverty_outreach_mean_likelihood_in_window(harness: Harness) -> None:
    await harness.send(
        [
            reg("A", "2024-01-01", "B1", "female", True),
            assess("A", "2024-01-05", "0.25"),
            assess("A", "2024-04-10", "0.5"),
            assess("U", "2024-04-11", "0.125"),  # never registered: all + gender:unknown only
        ]
    )
    h = harness
    # window as of 2024-04-11: 2024-01-13..2024-04-11 -> 0.5 and 0.125
    v = await h.value("poverty_outreach_entry", "all", "2024-04-11")
    assert (v["numerator"], v["denominator"], v["value"]) == (
        Decimal("0.625"),
        2,
        Decimal("0.3125"),
    )
    assert await h.v("poverty_outreach_entry", "branch:B1", "2024-04-11") == Decimal("0.5")
    assert await h.v("poverty_outreach_entry", "gender:unknown", "2024-04-11") == Decimal("0.125")
    # as of 2024-01-05 only the first one
    assert await h.v("poverty_outreach_entry", "all", "2024-01-05") == Decimal("0.25")
    assert await h.v("poverty_outreach_entry.national", "all", "2024-01-05") == Decimal("0.25")


@pytest.mark.parametrize("overrides", [{"indicators_poverty_line": "usd_3.20"}])
async def test_poverty_lines_are_never_averaged_together(harness: Harness) -> None:
    h = harness
    await h.send(
        [
            reg("A", "2024-01-01", "B1", "female", True),
            assess("A", "2024-01-05", "0.25"),  # national
            assess("A", "2024-01-06", "0.5", poverty_line="usd_3.20"),
            assess("A", "2024-01-07", "0.75", poverty_line="usd_3.20"),
        ]
    )
    # the primary line is usd_3.20 here (a line with a dot: the code splits at the first one)
    primary = await h.value("poverty_outreach_entry", "all", "2024-01-07")
    assert (primary["numerator"], primary["denominator"]) == (Decimal("1.25"), 2)
    assert await h.v("poverty_outreach_entry.usd_3.20", "all", "2024-01-07") == Decimal("0.625")
    assert await h.v("poverty_outreach_entry.national", "all", "2024-01-07") == Decimal("0.25")
    series = await h.get(
        "/v1/indicators/poverty_outreach_entry.usd_3.20/series",
        segment="branch:B1", **{"from": "2024-01-06", "to": "2024-01-07"},
    )  # fmt: skip
    assert series.status_code == 200, series.text
    assert [p["value"] for p in series.json()["points"]] == [0.5, 0.625]
    catalog = (await h.get("/v1/catalog")).json()
    assert catalog["parameters"]["poverty_line"] == "usd_3.20"
    codes = {i["code"] for i in catalog["indicators"]}
    assert {"poverty_outreach_entry.usd_3.20", "poverty_outreach_entry.national"} <= codes
    await h.send([assess("A", "2024-01-07", "0.125", poverty_line="PPI/2020 $1.90")])
    code = quote("poverty_outreach_entry.PPI/2020 $1.90", safe="")  # a line is any text
    series = await h.get(f"/v1/indicators/{code}/series", segment="branch:B1")
    assert series.status_code == 200, series.text
    assert series.json()["points"][-1]["value"] == 0.125
    breakdown = await h.get(f"/v1/indicators/{code}/breakdown", by="branch", as_of="2024-01-07")
    assert breakdown.status_code == 200, breakdown.text
    assert [i["value"] for i in breakdown.json()["items"]] == [0.125]
    assert await h.v("poverty_outreach_entry.PPI/2020 $1.90", "all", "2024-01-07") == Decimal(
        "0.125"
    )
    unseen = await h.get("/v1/indicators/poverty_outreach_entry.ppp_2011/series")
    assert unseen.status_code == 404 and "path.code" in unseen.text
