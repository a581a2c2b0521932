"""What a branch manager's session gets from the APIs: one list of checks, run for a person
signed in through the identity provider and for one signed in with a local account.

Values, series, breakdown rows and CSV rows of another branch are refused (403 naming
``query.segment``) or filtered out; its alerts are neither listed, readable nor acknowledgeable;
a silence of it is neither listed nor creatable. ``admin`` sees everything (the data exists).
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

CSV = {"Accept": "text/csv"}


def _fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


def _segments(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/csv"):
        return [row["segment"] for row in csv.DictReader(io.StringIO(response.text))]
    return [item["segment"] for item in response.json()["items"]]


def target(indicator: str, segment: str, direction: str, threshold: str) -> dict[str, Any]:
    return {"indicator": indicator, "segment": segment, "direction": direction,
            "threshold": threshold, "effective_from": "2026-01-01"}  # fmt: skip


BRANCH_REACH = {
    "code": "branch-reach", "name": "Branch outreach", "description": "per branch",
    "dimension": "D1", "owner": "Operations",
    "targets": [target("active_clients", "branch:BR-MSA", "at_least", "1000000"),
                target("active_clients", "branch:BR-NAI", "at_least", "1000000")],
}  # fmt: skip
"""An objective with one target per demo branch, each far off (both branches alert)."""


async def alerts_of(admin: httpx.AsyncClient, segment: str, within_s: float = 120.0) -> list[Any]:
    """The alerts of ``segment`` once the alert service has evaluated its targets."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        response = await admin.get("/v1/alerts", params={"limit": 500})
        assert response.status_code == 200, response.text
        found = [a for a in response.json() if a["segment"] == segment]
        if found:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"no alert of {segment} within {within_s} s")


async def assert_branch_scope(
    person: httpx.AsyncClient, admin: httpx.AsyncClient, mine: str, other: str
) -> None:
    own, theirs = f"branch:{mine}", f"branch:{other}"
    assert {own, theirs} <= set(_segments(await admin.get("/v1/indicators")))

    # values and their CSV: their branch and the institution-level ones, no other branch
    seen = set(_segments(await person.get("/v1/indicators")))
    assert own in seen and "all" in seen, seen
    assert {s for s in seen if s.startswith("branch:")} == {own}, seen
    assert set(_segments(await person.get("/v1/indicators", headers=CSV))) == seen
    # breakdown rows (JSON and CSV): their branch's only
    by_branch = {"by": "branch"}
    breakdown = "/v1/indicators/active_clients/breakdown"
    assert _segments(await person.get(breakdown, params=by_branch)) == [own]
    assert _segments(await person.get(breakdown, params=by_branch, headers=CSV)) == [own]
    assert len(_segments(await admin.get(breakdown, params=by_branch))) > 1
    # one value or series of the other branch: refused, whatever the format
    series = await person.get("/v1/indicators/active_clients/series", params={"segment": own})
    assert series.status_code == 200 and series.json()["points"], series.text
    for path, params, headers in (
        ("/v1/indicators/active_clients/series", {"segment": theirs}, {}),
        ("/v1/indicators", {"code": "active_clients", "segment": theirs}, {}),
        ("/v1/indicators", {"segment": theirs}, CSV),
    ):
        refused = await person.get(path, params=params, headers=headers)
        assert refused.status_code == 403, (path, refused.text)
        assert _fields(refused) == ["query.segment"], refused.text

    # alerts: the other branch's are not listed, not readable, not acknowledgeable
    other_alert = (await alerts_of(admin, theirs))[0]
    listed = await person.get("/v1/alerts", params={"limit": 500})
    assert listed.status_code == 200, listed.text
    segments = {a["segment"] for a in listed.json()}
    assert own in segments and theirs not in segments, segments
    for refused in (
        await person.get(f"/v1/alerts/{other_alert['id']}"),
        await person.post(f"/v1/alerts/{other_alert['id']}/ack", json={"comment": "not mine"}),
    ):
        assert refused.status_code == 403 and _fields(refused) == ["alert_id"], refused.text

    # silences: the other branch's are not listed, and none can be made for it
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {"matchers": [{"name": "segment", "value": theirs}], "comment": "visit", "ends_at": ends}
    made = await admin.post("/v1/silences", json=body)
    assert made.status_code == 201, made.text
    refused = await person.post("/v1/silences", json=body)
    assert refused.status_code == 403 and _fields(refused) == ["matchers"], refused.text
    silences = await person.get("/v1/silences")
    assert silences.status_code == 200, silences.text
    assert made.json()["id"] not in {s["id"] for s in silences.json()}
