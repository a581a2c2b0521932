"""API shapes, CSV, errors (404 / 422 naming the field), authentication and scopes."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import httpx
import pytest

from tests.common.route_auth import assert_every_route_keyed
from tests.indicators.conftest import OTHER_KEY, Harness
from tests.indicators.events import copen, disb, exit_, reg

EXPECTED_CODES = {
    "active_clients", "active_borrowers", "gross_loan_portfolio", "women_borrower_share",
    "rural_borrower_share", "new_borrower_women_share", "poverty_outreach_entry",
    "avg_disbursed_amount", "avg_balance_gni_ratio", "dropout_rate", "client_retention_rate",
    "par30", "par90", "write_off_ratio", "dsti_breach_share", "multi_lender_share",
    "complaints_per_1k_clients", "complaints_resolved_in_sla", "complaint_resolution_days_p50",
    "complaint_resolution_days_p90", "open_complaints_past_sla", "conduct_complaint_share",
}  # fmt: skip


async def _seed(h: Harness) -> None:
    await h.send(
        [
            reg("A", "2024-01-01", "B1", "female", True),
            reg("B", "2024-01-02", "B2", "male", False),
            disb("L1", "A", "2024-01-03", "1000.5", "B1", "P1"),
            exit_("B", "2024-01-04", "voluntary", "moved"),
            copen("K1", "2024-01-05T08:00:00+00:00", "B3"),
        ]
    )


async def test_current_values_shape_and_segments(harness: Harness) -> None:
    h = harness
    await _seed(h)
    r = await h.get("/v1/indicators")
    assert r.status_code == 200
    body = json.loads(r.text, parse_float=Decimal)
    assert body["as_of"] == "2024-01-05"
    codes = {i["code"] for i in body["items"]}
    # the primary poverty line (default national) has both codes before any assessment
    assert codes == EXPECTED_CODES | {"exit_reason_share.moved", "poverty_outreach_entry.national"}
    item = next(i for i in body["items"] if (i["code"], i["segment"]) == ("active_clients", "all"))
    assert item == {
        "code": "active_clients", "segment": "all", "as_of": "2024-01-05", "value": 1,
        "numerator": 1, "denominator": None, "n": None, "unit": "clients",
    }  # fmt: skip
    segments = {i["segment"] for i in body["items"] if i["code"] == "gross_loan_portfolio"}
    assert segments == {
        "all", "branch:B1", "branch:B2", "branch:B3", "product:P1", "gender:female",
        "gender:male", "gender:other", "gender:unknown", "rural:true", "rural:false",
    }  # fmt: skip
    complaint_segments = {i["segment"] for i in body["items"] if i["code"] == "par30"}
    assert "product:P1" in complaint_segments
    assert {i["segment"] for i in body["items"] if i["code"] == "open_complaints_past_sla"} == {
        "all", "branch:B1", "branch:B2", "branch:B3"
    }  # fmt: skip
    # decimals are JSON numbers at full precision
    assert '"value":1000.5' in (await h.get("/v1/indicators", code="gross_loan_portfolio",
                                            segment="all")).text  # fmt: skip
    empty = await h.value("women_borrower_share", "gender:other")
    assert (empty["value"], empty["numerator"], empty["denominator"]) == (None, 0, 0)
    only = await h.get("/v1/indicators", segment="branch:B2")
    assert {i["segment"] for i in only.json()["items"]} == {"branch:B2"}


async def test_series_breakdown_and_csv(harness: Harness) -> None:
    h = harness
    await _seed(h)
    r = await h.get("/v1/indicators/active_clients/series", segment="all",
                    **{"from": "2024-01-01", "to": "2024-01-05"})  # fmt: skip
    assert r.status_code == 200
    body = r.json()
    assert (body["code"], body["segment"]) == ("active_clients", "all")
    assert [(p["as_of"], p["value"]) for p in body["points"]] == [
        ("2024-01-01", 1), ("2024-01-02", 2), ("2024-01-03", 2), ("2024-01-04", 1),
        ("2024-01-05", 1),
    ]  # fmt: skip
    assert set(body["points"][0]) == {"as_of", "value", "numerator", "denominator", "n"}
    default = (await h.get("/v1/indicators/active_clients/series")).json()
    assert len(default["points"]) == 90 and default["points"][-1]["as_of"] == "2024-01-05"
    b = await h.get("/v1/indicators/active_clients/breakdown", by="branch", as_of="2024-01-03")
    assert b.status_code == 200
    bb = b.json()
    assert (bb["code"], bb["by"], bb["as_of"]) == ("active_clients", "branch", "2024-01-03")
    assert {i["segment"]: i["value"] for i in bb["items"]} == {
        "branch:B1": 1, "branch:B2": 1, "branch:B3": 0
    }  # fmt: skip
    c = await h.client.get("/v1/indicators", params={"code": "active_clients"},
                           headers={"Accept": "text/csv"})  # fmt: skip
    assert c.status_code == 200 and c.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(c.text)))
    assert rows[0].keys() == {"code", "segment", "as_of", "value", "numerator", "denominator",
                              "n", "unit"}  # fmt: skip
    assert {r["segment"]: r["value"] for r in rows}["all"] == "1"
    s = await h.client.get("/v1/indicators/par30/series", headers={"Accept": "text/csv"},
                           params={"from": "2024-01-04", "to": "2024-01-05"})  # fmt: skip
    lines = s.text.strip().splitlines()
    assert lines[0] == "code,segment,as_of,value,numerator,denominator,n"
    assert lines[1] == "par30,all,2024-01-04,0,0,1000.5,"
    bc = await h.client.get("/v1/indicators/par30/breakdown", params={"by": "product"},
                            headers={"Accept": "text/csv"})  # fmt: skip
    assert bc.text.splitlines()[1].startswith("par30,product:P1,2024-01-05,0,0,1000.5")


async def test_catalog(harness: Harness) -> None:
    h = harness
    await _seed(h)
    r = await h.get("/v1/catalog")
    assert r.status_code == 200
    body = r.json()
    by_code = {i["code"]: i for i in body["indicators"]}
    assert set(by_code) == EXPECTED_CODES | {
        "exit_reason_share.moved",
        "poverty_outreach_entry.national",
    }
    assert body["parameters"]["sla_days"] == 30
    assert body["parameters"]["dsti_limit"] == 0.5
    assert body["parameters"]["lender_count"] == 3
    assert body["parameters"]["dropout_delay_days"] == 90
    assert body["parameters"]["gni_per_capita"] == 1000
    par = by_code["par30"]
    assert (par["kind"], par["window_days"], par["unit"]) == ("stock", None, "share")
    assert "÷" in par["formula"] and par["segments"] == [
        "all",
        "branch",
        "product",
        "gender",
        "rural",
    ]
    assert by_code["dropout_rate"]["window_days"] == 365
    assert by_code["complaint_resolution_days_p90"]["kind"] == "quantile"
    assert by_code["gross_loan_portfolio"]["unit"] == "KES"


async def test_errors_name_the_field(harness: Harness) -> None:
    h = harness
    await _seed(h)
    cases = [
        ("/v1/indicators", {"code": "nope"}, 404, "code"),
        ("/v1/indicators", {"code": "exit_reason_share.unknown"}, 404, "code"),
        ("/v1/indicators", {"segment": "branch:NOPE"}, 404, "segment"),
        ("/v1/indicators", {"segment": "region:x"}, 422, "segment"),
        ("/v1/indicators", {"segment": "gender:robot"}, 422, "segment"),
        ("/v1/indicators", {"code": "active_clients", "segment": "product:P1"}, 422, "segment"),
        ("/v1/indicators", {"as_of": "2024-13-01"}, 422, "as_of"),
        ("/v1/indicators", {"as_of": "2024-01-06"}, 422, "as_of"),
        ("/v1/indicators/nope/series", {}, 404, "code"),
        ("/v1/indicators/par30/series", {"from": "2024-01-05", "to": "2024-01-01"}, 422, "from"),
        ("/v1/indicators/par30/series", {"to": "2025-01-01"}, 422, "to"),
        ("/v1/indicators/par30/series", {"from": "yesterday"}, 422, "from"),
        ("/v1/indicators/par30/breakdown", {"by": "region"}, 422, "by"),
        ("/v1/indicators/active_clients/breakdown", {"by": "product"}, 422, "by"),
        ("/v1/indicators/nope/breakdown", {"by": "branch"}, 404, "code"),
    ]
    for path, params, status, field in cases:
        r = await h.get(path, **params)
        assert r.status_code == status, (path, params, r.text)
        body = r.json()
        where = "path" if field == "code" and "{" not in path and path.count("/") > 2 else "query"
        assert body["errors"][0]["field"] == f"{where}.{field}", (path, params, body)
        assert body["errors"][0]["reason"]


async def test_authentication_and_scope(harness: Harness) -> None:
    h = harness
    transport = httpx.ASGITransport(app=h.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as anonymous:
        assert (await anonymous.get("/v1/indicators")).status_code == 401
        assert (await anonymous.get("/v1/catalog")).status_code == 401
        wrong = {"Authorization": "Bearer not-a-key"}
        assert (await anonymous.get("/v1/indicators", headers=wrong)).status_code == 401
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        assert (await anonymous.get("/v1/indicators", headers=other)).status_code == 403
        assert (await anonymous.get("/healthz")).status_code == 200


async def test_every_route_needs_its_key(harness: Harness) -> None:
    walked = await assert_every_route_keyed(harness.app, wrong_scope_key=OTHER_KEY)
    assert ("GET", "/v1/indicators/1/series") in walked


async def test_no_events_yet(harness: Harness) -> None:
    r = await harness.get("/v1/indicators")
    assert r.status_code == 200
    assert r.json() == {"as_of": None, "items": []}


@pytest.mark.parametrize("overrides", [{"indicators_min_cell_size": 3}])
async def test_small_cells_are_suppressed(harness: Harness) -> None:
    h = harness
    await _seed(h)
    women = await h.value("women_borrower_share", "all")  # 1 of 1 borrower: below 3
    assert (women["value"], women["numerator"], women["denominator"]) == (None, 1, 1)
    assert await h.v("active_clients", "all") == 1  # counts are not ratios: shown


@pytest.mark.parametrize("overrides", [{"institution_timezone": "Africa/Nairobi"}])
async def test_timestamps_fall_on_the_institutions_day(harness: Harness) -> None:
    h = harness
    # 22:30 UTC on 01-05 is 01:30 on 01-06 in Nairobi (UTC+3)
    await h.send([copen("K1", "2024-01-05T22:30:00+00:00", "B1")])
    r = await h.get("/v1/indicators", code="conduct_complaint_share", segment="all")
    assert r.json()["as_of"] == "2024-01-06"
    v = await h.value("conduct_complaint_share", "all", "2024-01-06")
    assert v["denominator"] == 1
