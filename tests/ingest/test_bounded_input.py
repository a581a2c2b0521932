"""Bad input that used to cost memory or answer 500 is refused cheaply, naming the field.

- A batch is decoded one event at a time and refused at its 5,001st: a 10 MiB array of 3.5
  million ``{}`` used to become as many dicts (about 250 MB traced) before the 413; a million
  NDJSON lines 138 MB.
- A 5,000-digit integer made ``json.loads`` raise ``ValueError`` (Python's int conversion
  limit): a 500 on every ingest route. Now 422 with the field.
- A Fineract hook dated ``[2025, 13, 1]`` or ``[2025, 2, 30]`` raised in ``date()``: a 500.
"""

from __future__ import annotations

import json
import tracemalloc

import httpx
import pytest

from tests.ingest.conftest import auth, event

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

HUGE = "9" * 5000
LONG_INTEGER = "integer too long (more digits than the 4300 Python converts)"


def _empty_objects(size: int) -> bytes:
    """A JSON array of ``{}`` just under ``size`` bytes."""
    return b"[" + b",".join([b"{}"] * ((size - 2) // 3)) + b"]"


async def _peak_mb(client: httpx.AsyncClient, body: bytes, content_type: str) -> tuple[int, float]:
    tracemalloc.start()
    try:
        response = await client.post(
            "/v1/events/batch", content=body, headers={**auth(), "Content-Type": content_type}
        )
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        print(f"{content_type}: {len(body) / 1e6:.1f} MB body, {peak:.1f} MB traced at peak")
    finally:
        tracemalloc.stop()
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == "a batch holds at most 5000 events"
    return response.status_code, peak


async def test_a_json_batch_is_counted_while_decoding(client: httpx.AsyncClient) -> None:
    body = _empty_objects(10 * 1024 * 1024)  # under the body limit: only the count refuses it
    _, peak = await _peak_mb(client, body, "application/json")
    assert peak < 50, f"{peak:.0f} MB traced while refusing 3.5 million events"


async def test_an_ndjson_batch_is_counted_while_decoding(client: httpx.AsyncClient) -> None:
    body = b"{}\n" * 1_000_000
    _, peak = await _peak_mb(client, body, "application/x-ndjson")
    assert peak < 50, f"{peak:.0f} MB traced while refusing a million lines"


async def test_the_limit_itself_is_one_batch(client: httpx.AsyncClient) -> None:
    """5,000 events are decoded and answered one by one (here all rejected), not refused."""
    body = b"[" + b",".join([b"{}"] * 5000) + b"]"
    headers = {**auth(), "Content-Type": "application/json"}
    response = await client.post("/v1/events/batch", content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["rejected"] == 5000


def _with_huge(document: object) -> bytes:
    """JSON text of ``document`` with the string "HUGE" replaced by a 5,000-digit integer."""
    return json.dumps(document).replace('"HUGE"', HUGE).encode()


def _disbursal(source: str) -> dict[str, object]:
    data = {
        "loan_id": "L1",
        "client_id": "C1",
        "branch_id": "B1",
        "product_id": "P",
        "loan_cycle": 1,
        "amount": "1000.00",
        "currency": "KES",
        "term_months": "HUGE",
        "disbursed_on": "2025-03-03",
    }
    return event("spm.loan.disbursed.v1", "huge-1", source, data)


async def test_a_5000_digit_integer_is_a_422_naming_the_field_on_every_route(
    client: httpx.AsyncClient, unique: str
) -> None:
    one = _disbursal(f"core:{unique}")
    json_type = {**auth(), "Content-Type": "application/json"}
    single = await client.post("/v1/events", content=_with_huge(one), headers=json_type)
    assert single.status_code == 422, single.text
    assert single.json()["errors"] == [{"field": "data.term_months", "reason": LONG_INTEGER}]

    batch = await client.post("/v1/events/batch", content=_with_huge([one]), headers=json_type)
    assert batch.status_code == 422, batch.text
    assert batch.json()["errors"] == [{"field": "[0].data.term_months", "reason": LONG_INTEGER}]

    ndjson = _with_huge(one) + b"\n"
    lines = await client.post(
        "/v1/events/batch",
        content=ndjson,
        headers={**auth(), "Content-Type": "application/x-ndjson"},
    )
    assert lines.status_code == 422, lines.text
    assert lines.json()["errors"] == [{"field": "[0].data.term_months", "reason": LONG_INTEGER}]

    case = {"Id": "5003X", "CaseNumber": "HUGE", "CreatedDate": "2025-03-05T09:12:44.000+0000"}
    crm = await client.post(
        "/v1/sources/crm/complaints", content=_with_huge(case), headers=json_type
    )
    assert crm.status_code == 422, crm.text
    assert crm.json()["errors"] == [{"field": "CaseNumber", "reason": LONG_INTEGER}]
    crm_array = await client.post(
        "/v1/sources/crm/complaints", content=_with_huge([case]), headers=json_type
    )
    assert crm_array.status_code == 422, crm_array.text
    assert crm_array.json()["errors"] == [{"field": "[0].CaseNumber", "reason": LONG_INTEGER}]

    hook = _hook([2025, 3, 1]) | {"clientId": "HUGE"}
    fineract = await client.post(
        "/v1/sources/fineract/hooks",
        content=_with_huge(hook),
        headers={**json_type, "Fineract-Platform-TenantId": "default"},
    )
    assert fineract.status_code == 422, fineract.text
    assert fineract.json()["errors"] == [{"field": "clientId", "reason": LONG_INTEGER}]


def _hook(closure: list[int]) -> dict[str, object]:
    return {
        "entityName": "CLIENT",
        "actionName": "CLOSE",
        "request": {"closureDate": closure, "closureReasonId": 17},
        "officeId": 2,
        "clientId": 1042,
        "response": {"commandId": 9123, "resourceId": 1042, "clientId": 1042},
    }


@pytest.mark.parametrize(
    ("closure", "reason"),
    [([2025, 13, 1], "month must be in 1..12"), ([2025, 2, 30], "day is out of range for month")],
)
async def test_a_hook_dated_on_no_day_is_a_422_naming_the_field(
    client: httpx.AsyncClient, closure: list[int], reason: str
) -> None:
    response = await client.post(
        "/v1/sources/fineract/hooks",
        json=_hook(closure),
        headers={**auth(), "Fineract-Platform-TenantId": "default"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": "request.closureDate", "reason": reason}]
