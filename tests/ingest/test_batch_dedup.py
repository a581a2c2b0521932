"""Batches mixing good, bad and duplicate events; dedup across requests and restarts."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from services.ingest.config import IngestSettings
from tests.ingest.conftest import TopicTail, auth, event, of_source, running

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

REGISTERED = "spm.client.registered.v1"
DISBURSED = "spm.loan.disbursed.v1"


def registration(source: str, id_: str, client: str = "c1") -> dict[str, Any]:
    data = {
        "client_id": client,
        "branch_id": "BR1",
        "gender": "female",
        "registered_on": "2025-01-02",
    }
    return event(REGISTERED, id_, source, data)


def disbursal(source: str, id_: str, **overrides: Any) -> dict[str, Any]:
    data = {
        "loan_id": "L1",
        "client_id": "c1",
        "branch_id": "BR1",
        "product_id": "P1",
        "amount": "15000.00",
        "currency": "KES",
        "disbursed_on": "2025-01-03",
        **overrides,
    }
    return event(DISBURSED, id_, source, data)


async def test_mixed_batch(client: httpx.AsyncClient, tail: TopicTail, unique: str) -> None:
    source = f"core:{unique}"
    batch = [
        registration(source, "e0"),
        disbursal(source, "e1", amount="-5", currency="USD"),  # bad: two fields
        registration(source, "e0"),  # duplicate within the batch
        {**registration(source, "e3"), "time": "2025-01-02T10:00:00"},  # no UTC offset
        {**registration(source, "e4"), "type": "spm.client.flew.v1"},
        disbursal(source, "e5"),
        "not an event",
        {
            **disbursal(source, "e7"),
            "data": {**disbursal(source, "e7")["data"], "disbursed_on": "2999-01-01"},
        },
    ]
    response = await client.post("/v1/events/batch", json=batch, headers=auth())
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 5)
    status = {r["index"]: r["status"] for r in body["results"]}
    assert status == {
        0: "accepted",
        1: "rejected",
        2: "duplicate",
        3: "rejected",
        4: "rejected",
        5: "accepted",
        6: "rejected",
        7: "rejected",
    }
    errors = {r["index"]: {e["field"] for e in r["errors"]} for r in body["results"]}
    assert errors[1] == {"data.amount", "data.currency"}
    assert errors[3] == {"time"}
    assert errors[4] == {"type"}
    assert errors[6] == {"(event)"}
    assert errors[7] == {"data.disbursed_on"}
    assert all(e["reason"] for r in body["results"] for e in r["errors"])

    # the service keeps serving; the same events again are duplicates
    again = await client.post("/v1/events/batch", json=batch, headers=auth())
    assert again.status_code == 202
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 3)

    records = of_source(await tail.read(), source)
    assert sorted(r.headers["ce_id"].decode() for r in records) == ["e0", "e5"]


async def test_ndjson_and_all_rejected(client: httpx.AsyncClient, unique: str) -> None:
    source = f"core:{unique}"
    lines = [
        json.dumps(registration(source, "n0")),
        "{not json",
        json.dumps(disbursal(source, "n2")),
    ]
    response = await client.post(
        "/v1/events/batch",
        content="\n".join(lines) + "\n",
        headers={**auth(), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202, response.text
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected", "accepted"]

    bad = [disbursal(source, "b0", currency="EUR"), {"specversion": "0.3"}]
    response = await client.post("/v1/events/batch", json=bad, headers=auth())
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 0 and body["rejected"] == 2
    assert {"field": "[0].data.currency", "reason": body["errors"][0]["reason"]} in body["errors"]
    assert "detail" in body


async def test_single_event_endpoint_statuses(client: httpx.AsyncClient, unique: str) -> None:
    source = f"core:{unique}"
    ok = await client.post(
        "/v1/events",
        content=json.dumps(registration(source, "s0")),
        headers={**auth(), "Content-Type": "application/cloudevents+json"},
    )
    assert ok.status_code == 202
    dup = await client.post("/v1/events", json=registration(source, "s0"), headers=auth())
    assert dup.status_code == 202 and dup.json()["duplicates"] == 1
    bad = await client.post("/v1/events", content=b"{", headers=auth())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "(body)"
    wrong_type = await client.post(
        "/v1/events", content=b"{}", headers={**auth(), "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415


async def test_limits(ingest_settings: IngestSettings, drop_schema: None, unique: str) -> None:
    settings = ingest_settings.model_copy(
        update={"ingest_max_batch_events": 3, "ingest_max_body_bytes": 4096}
    )
    source = f"core:{unique}"
    async with running(settings) as (_, client):
        four = [registration(source, f"l{i}") for i in range(4)]
        assert (await client.post("/v1/events/batch", json=four, headers=auth())).status_code == 413
        big = [{**registration(source, "big"), "padding": "x" * 5000}]
        response = await client.post("/v1/events/batch", json=big, headers=auth())
        assert response.status_code == 413
        assert response.json()["errors"][0]["field"] == "(body)"
        empty = await client.post("/v1/events/batch", json=[], headers=auth())
        assert empty.status_code == 422


async def test_dedup_survives_restart(
    ingest_settings: IngestSettings, drop_schema: None, kafka_bootstrap: str, unique: str
) -> None:
    source = f"core:{unique}"
    async with running(ingest_settings) as (_, client):
        tail = TopicTail(kafka_bootstrap)
        await tail.mark()
        first = await client.post("/v1/events", json=registration(source, "r0"), headers=auth())
        assert first.json()["accepted"] == 1
    async with running(ingest_settings) as (_, client):  # same database, new app
        again = await client.post("/v1/events", json=registration(source, "r0"), headers=auth())
        assert again.status_code == 202 and again.json()["duplicates"] == 1
    assert len(of_source(await tail.read(), source)) == 1


async def test_same_id_other_content_is_a_conflict(
    ingest_settings: IngestSettings, drop_schema: None, kafka_bootstrap: str, unique: str
) -> None:
    """An id re-sent with other content is not a duplicate: ``conflict``, the first content
    stays on Kafka, counted; the same content again is still a duplicate — after a restart too,
    and within one batch."""
    source = f"core:{unique}"
    tail = TopicTail(kafka_bootstrap)
    await tail.mark()
    before = {status: _counted(source, status) for status in ("conflict", "duplicate")}
    async with running(ingest_settings) as (_, client):
        first = await client.post("/v1/events", json=disbursal(source, "k0"), headers=auth())
        assert first.status_code == 202 and first.json()["accepted"] == 1
        other = disbursal(source, "k0", amount="99999.00")
        conflict = await client.post("/v1/events", json=other, headers=auth())
        assert conflict.status_code == 409, conflict.text
        body = conflict.json()
        assert (body["accepted"], body["duplicates"], body["conflicts"]) == (0, 0, 1)
        [result] = body["results"]
        assert result["status"] == "conflict" and result["errors"][0]["field"] == "id"
        assert body["errors"][0]["field"] == "[0].id"
        batch = [
            disbursal(source, "k0"),  # the first content again: a duplicate
            disbursal(source, "k1"),
            disbursal(source, "k1", loan_id="L2"),  # other content, same batch
            disbursal(source, "k1"),
        ]
        mixed = await client.post("/v1/events/batch", json=batch, headers=auth())
        assert mixed.status_code == 202
        assert [r["status"] for r in mixed.json()["results"]] == [
            "duplicate",
            "accepted",
            "conflict",
            "duplicate",
        ]
        assert _counted(source, "conflict") - before["conflict"] == 2
        assert _counted(source, "duplicate") - before["duplicate"] == 2
    async with running(ingest_settings) as (_, client):  # the hashes are in the database
        again = await client.post("/v1/events", json=other, headers=auth())
        assert again.status_code == 409
        same = await client.post("/v1/events", json=disbursal(source, "k0"), headers=auth())
        assert same.status_code == 202 and same.json()["duplicates"] == 1
    records = of_source(await tail.read(), source)
    assert sorted(r.headers["ce_id"].decode() for r in records) == ["k0", "k1"]
    k0 = next(r for r in records if r.headers["ce_id"] == b"k0")
    assert json.loads(k0.value or b"")["amount"] == "15000.00"  # the first content stays


def _counted(source: str, outcome: str) -> int:
    """``spm_ingest_events_total`` of this source with this outcome, as Prometheus scrapes it."""
    return int(
        sum(
            sample.value
            for metric in REGISTRY.collect()
            if metric.name == "spm_ingest_events"
            for sample in metric.samples
            if sample.name == "spm_ingest_events_total"
            and sample.labels.get("source") == source
            and sample.labels.get("outcome") == outcome
        )
    )
