"""Branch scope on the indicator API: a key limited to branch B1 gets B1's values, series,
breakdown rows and CSV rows (plus the institution-level ones unless the operator turns them
off) and a 403 for any other branch's segment, on both database modes."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from services.common.auth import hash_key
from tests.indicators.conftest import READER_KEY, Harness
from tests.indicators.events import copen, disb, reg

B1_KEY = "b1-manager-secret"
KEYS = json.dumps(
    [
        {"name": "reader", "sha256": hash_key(READER_KEY), "scopes": ["indicators:read"]},
        {
            "name": "B1 manager",
            "subject": "idp|b1",
            "sha256": hash_key(B1_KEY),
            "scopes": ["indicators:read"],
            "branches": ["B1"],
        },
    ]
)
INSTITUTION = {"all", "product:P1", "gender:female", "gender:male", "rural:true", "rural:false"}


async def _seed(h: Harness) -> None:
    await h.send(
        [
            reg("A", "2024-01-01", "B1", "female", True),
            reg("B", "2024-01-02", "B2", "male", False),
            disb("L1", "A", "2024-01-03", "1000.5", "B1", "P1"),
            copen("K1", "2024-01-05T08:00:00+00:00", "B3"),
        ]
    )


async def _as_b1(h: Harness, path: str, csv_: bool = False, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {B1_KEY}"}
    if csv_:
        headers["Accept"] = "text/csv"
    return await h.client.get(path, params=params, headers=headers)


def _refused(r: httpx.Response) -> bool:
    return r.status_code == 403 and [e["field"] for e in r.json()["errors"]] == ["query.segment"]


@pytest.mark.parametrize("overrides", [{"api_keys": KEYS}])
async def test_a_branch_manager_sees_their_branch_and_the_institution(harness: Harness) -> None:
    h = harness
    await _seed(h)
    everything = {i["segment"] for i in (await h.get("/v1/indicators")).json()["items"]}
    assert {"branch:B2", "branch:B3"} <= everything

    r = await _as_b1(h, "/v1/indicators")
    assert r.status_code == 200, r.text
    seen = {i["segment"] for i in r.json()["items"]}
    assert "branch:B1" in seen and seen >= INSTITUTION
    assert not {s for s in seen if s.startswith("branch:")} - {"branch:B1"}

    rows = list(csv.DictReader(io.StringIO((await _as_b1(h, "/v1/indicators", True)).text)))
    assert rows and {r["segment"] for r in rows} == seen

    b = await _as_b1(h, "/v1/indicators/active_clients/breakdown", by="branch")
    assert [i["segment"] for i in b.json()["items"]] == ["branch:B1"]
    bc = await _as_b1(h, "/v1/indicators/active_clients/breakdown", True, by="branch")
    assert [r["segment"] for r in csv.DictReader(io.StringIO(bc.text))] == ["branch:B1"]
    g = await _as_b1(h, "/v1/indicators/active_clients/breakdown", by="gender")
    assert len(g.json()["items"]) == 4

    ok = await _as_b1(h, "/v1/indicators/active_clients/series", segment="branch:B1")
    assert ok.status_code == 200 and ok.json()["points"][-1]["value"] == 1
    assert (await _as_b1(h, "/v1/indicators/active_clients/series")).status_code == 200
    for segment in ("branch:B2", "branch:never-seen"):  # 403 either way: nothing to probe
        assert _refused(await _as_b1(h, "/v1/indicators/active_clients/series", segment=segment))
        assert _refused(await _as_b1(h, "/v1/indicators", code="active_clients", segment=segment))
        assert _refused(await _as_b1(h, "/v1/indicators", True, segment=segment))

    me = (await _as_b1(h, "/v1/me")).json()
    assert me == {
        "name": "B1 manager", "subject": "idp|b1", "roles": [], "scopes": ["indicators:read"],
        "branches": ["B1"], "institution_level_visible": True,
    }  # fmt: skip
    assert (await h.get("/v1/me")).json()["branches"] is None


@pytest.mark.parametrize(
    "overrides", [{"api_keys": KEYS, "scope_institution_level_visible": False}]
)
async def test_the_institution_level_can_be_hidden(harness: Harness) -> None:
    h = harness
    await _seed(h)
    r = await _as_b1(h, "/v1/indicators")
    assert {i["segment"] for i in r.json()["items"]} == {"branch:B1"}
    assert _refused(await _as_b1(h, "/v1/indicators/active_clients/series"))  # segment=all
    assert _refused(await _as_b1(h, "/v1/indicators", code="par30", segment="product:P1"))
    g = await _as_b1(h, "/v1/indicators/active_clients/breakdown", by="gender")
    assert g.status_code == 200 and g.json()["items"] == []
    assert (await _as_b1(h, "/v1/me")).json()["institution_level_visible"] is False
    # unlimited keys are not affected
    assert "all" in {i["segment"] for i in (await h.get("/v1/indicators")).json()["items"]}
