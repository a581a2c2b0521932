"""Every canonical type goes HTTP -> topic with the right topic, key, headers and payload."""

from __future__ import annotations

import json

import httpx
import pytest

from contracts.envelope import from_kafka
from contracts.examples import EXAMPLES
from contracts.registry import SOURCE_EVENTS
from services.ingest.pseudonym import Pseudonymiser
from tests.ingest.conftest import PEPPER, TopicTail, auth, of_source

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_every_source_type_reaches_its_topic(
    client: httpx.AsyncClient, tail: TopicTail, unique: str
) -> None:
    source = f"core:{unique}"
    pseudo = Pseudonymiser(PEPPER)
    sent = {}
    for spec in SOURCE_EVENTS:
        body = EXAMPLES[spec.type].input()
        assert body is not None
        body = {**body, "source": source, "id": f"{spec.type}-{unique}"}
        response = await client.post("/v1/events", json=body, headers=auth())
        assert response.status_code == 202, response.text
        assert response.json() == {
            "accepted": 1,
            "duplicates": 0,
            "conflicts": 0,
            "rejected": 0,
            "results": [{"index": 0, "id": body["id"], "status": "accepted", "errors": []}],
        }
        sent[body["id"]] = (spec, body)

    records = of_source(await tail.read(), source)
    assert len(records) == len(SOURCE_EVENTS)
    for record in records:
        headers = record.headers
        spec, body = sent[headers["ce_id"].decode()]
        assert record.topic == spec.topic.name
        assert headers["ce_type"] == spec.type.encode()
        assert headers["ce_specversion"] == b"1.0"
        assert headers["ce_time"]
        assert headers["content-type"] == b"application/json"
        assert "traceparent" in headers
        data = json.loads(record.value or b"")
        raw = body["data"]
        assert "client_id" not in data and "officer_id" not in data
        if "client_id" in raw:
            assert data["client_pid"] == pseudo.client_pid(source, raw["client_id"])
        if "officer_id" in raw:
            assert data["officer_pid"] == pseudo.officer_pid(source, raw["officer_id"])
        for name in ("loan_id", "transaction_id", "complaint_id"):
            if name in raw:
                assert data[name] == f"{source}:{raw[name]}"
        key_field = "complaint_id" if spec.topic.name == "spm.complaints.v1" else "client_pid"
        assert record.key == data[key_field].encode()
        assert headers["ce_partitionkey"] == record.key
        event = from_kafka(record.value, list(headers.items()))  # a valid canonical event
        assert event.type == spec.type
