"""No personal data on any topic or in the logs, whatever sources send."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.ingest.conftest import TopicTail, auth, event

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NAME = "Wanjiku Kamau"
PHONE = "+254 712 345 678"
PHONE_2 = "0712345678"
NATIONAL_ID = "27845123"
EMAIL = "wanjiku.kamau@example.com"
ADDRESS = "Moi Avenue 12, Nairobi"
BIRTH_DATE = "1987-04-23"
FREE_TEXT = "officer shouted at me in front of the whole group"
PERSONAL = (NAME, PHONE, PHONE_2, NATIONAL_ID, EMAIL, ADDRESS, BIRTH_DATE, FREE_TEXT)

NOISE = {
    "name": NAME,
    "first_name": "Wanjiku",
    "phone": PHONE,
    "mobile": PHONE_2,
    "national_id": NATIONAL_ID,
    "email": EMAIL,
    "address": ADDRESS,
    "birth_date": BIRTH_DATE,
    "notes": FREE_TEXT,
    "description": FREE_TEXT,
}


def polluted_events(source: str) -> list[dict[str, object]]:
    envelope_noise = {"subject": f"{NAME} {PHONE}", "comment": FREE_TEXT, "email": EMAIL}
    return [
        {
            **event(
                "spm.client.registered.v1",
                "p1",
                source,
                {
                    "client_id": NATIONAL_ID,
                    "branch_id": "BR1",
                    "gender": "female",
                    "registered_on": "2025-01-02",
                    **NOISE,
                },
            ),
            **envelope_noise,
        },
        event(
            "spm.loan.disbursed.v1",
            "p2",
            source,
            {
                "loan_id": "L9",
                "client_id": NATIONAL_ID,
                "officer_id": EMAIL,
                "branch_id": "BR1",
                "product_id": "P1",
                "amount": "1000",
                "currency": "KES",
                "disbursed_on": "2025-01-03",
                **NOISE,
            },
        ),
        event(
            "spm.complaint.opened.v1",
            "p3",
            source,
            {
                "complaint_id": "C1",
                "client_id": PHONE_2,
                "branch_id": "BR1",
                "channel": "phone",
                "category": "conduct",
                "opened_at": "2025-01-04T10:00:00Z",
                **NOISE,
            },
        ),
        # rejected ones: personal data where a code belongs must not be echoed anywhere
        event(
            "spm.client.exited.v1",
            "p4",
            source,
            {
                "client_id": NATIONAL_ID,
                "exited_on": BIRTH_DATE,
                "exit_type": FREE_TEXT,
                "reason_code": EMAIL,
                **NOISE,
            },
        ),
    ]


async def test_no_personal_data_on_topics_or_logs(
    client: httpx.AsyncClient,
    tail: TopicTail,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    source = f"core:{unique}"
    response = await client.post("/v1/events/batch", json=polluted_events(source), headers=auth())
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3
    case = {
        "Id": f"500{unique}",
        "CaseNumber": "0001",
        "CreatedDate": "2025-03-05T09:12:44.000+0000",
        "IsClosed": False,
        "Origin": "Phone",
        "Type": "Conduct",
        "Client_Reference__c": NATIONAL_ID,
        "Subject": FREE_TEXT,
        "Description": FREE_TEXT,
        "SuppliedName": NAME,
        "SuppliedEmail": EMAIL,
        "SuppliedPhone": PHONE,
    }
    crm = await client.post("/v1/sources/crm/complaints", json=case, headers=auth())
    assert crm.status_code == 202, crm.text

    records = await tail.read()
    ours = [
        r for r in records if r.headers.get("ce_source") in (source.encode(), b"crm:salesforce")
    ]
    assert len(ours) >= 4
    for record in records:  # every record on every ingest topic since the mark
        blobs = [record.key or b"", record.value or b""]
        blobs += [name.encode() + b"=" + value for name, value in record.headers.items()]
        for blob in blobs:
            text = blob.decode("utf-8", "replace")
            for personal in PERSONAL:
                assert personal not in text, f"{personal!r} leaked to {record.topic}"
    registered = next(r for r in ours if r.headers["ce_id"] == b"p1")
    assert b'"birth_year":1987' in (registered.value or b"")  # the year is kept

    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records, "the service logs something"
    for personal in PERSONAL:
        assert personal not in logged, f"{personal!r} leaked to the logs"
