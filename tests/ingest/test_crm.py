"""CRM complaints webhook: Salesforce Case records -> complaint opened / resolved events."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from services.ingest.pseudonym import Pseudonymiser
from tests.ingest.conftest import PEPPER, TopicTail, auth

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def case(unique: str, n: int, closed: bool) -> dict[str, object]:
    record: dict[str, object] = {
        "Id": f"5003X{unique}{n}",
        "CaseNumber": f"{unique}-{n}",
        "CreatedDate": "2025-03-05T09:12:44.000+0000",
        "IsClosed": closed,
        "Origin": "Phone",
        "Type": "Loan Terms",
        "Reason": "Interest Rate",
        "Priority": "High",
        "Status": "Closed" if closed else "New",
        "Branch_Code__c": "BR-NAI-01",
        "Client_Reference__c": "1042",
        "Description": "free text never forwarded",
    }
    if closed:
        record["ClosedDate"] = "2025-03-12T15:02:10.000+0000"
    return record


async def test_salesforce_cases(client: httpx.AsyncClient, tail: TopicTail, unique: str) -> None:
    records = [case(unique, 1, closed=False), case(unique, 2, closed=True), {"Id": "broken"}]
    response = await client.post(
        "/v1/sources/crm/complaints", json={"records": records}, headers=auth()
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 3
    rejected = [r for r in body["results"] if r["status"] == "rejected"]
    assert rejected and all(r["index"] == 2 for r in rejected)

    again = await client.post("/v1/sources/crm/complaints", json=records[:2], headers=auth())
    assert again.json()["duplicates"] == 3 and again.json()["accepted"] == 0

    ours = [r for r in await tail.read() if unique in (r.value or b"").decode()]
    by_type: dict[str, list[Any]] = {}
    for r in ours:
        by_type.setdefault(r.headers["ce_type"].decode(), []).append(json.loads(r.value or b""))
    assert len(by_type["spm.complaint.opened.v1"]) == 2
    assert len(by_type["spm.complaint.resolved.v1"]) == 1
    opened = next(d for d in by_type["spm.complaint.opened.v1"] if d["complaint_id"].endswith("-2"))
    assert opened == {
        "complaint_id": f"crm:salesforce:{unique}-2",
        "client_pid": Pseudonymiser(PEPPER).client_pid("crm:salesforce", "1042"),
        "branch_id": "br-nai-01",
        "channel": "phone",
        "category": "loan_terms",
        "severity": "high",
        "opened_at": "2025-03-05T09:12:44Z",
    }
    resolved = by_type["spm.complaint.resolved.v1"][0]
    assert resolved == {
        "complaint_id": f"crm:salesforce:{unique}-2",
        "resolved_at": "2025-03-12T15:02:10Z",
        "outcome": "closed",
    }
    assert all(r.topic == "spm.complaints.v1" for r in ours)
