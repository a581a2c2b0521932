"""Broker outage at the ingest API: 503 + Retry-After while Kafka is down, and afterwards every
event that got 202 is on its topic exactly once.

The broker stopped is one of the test's own (tests.infra.PrivateInfra): the shared one keeps
serving the tests that run beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from services.ingest.config import IngestSettings
from tests.infra import PrivateInfra
from tests.ingest.conftest import TopicTail, auth, event, running
from tests.ingest.conftest import drop_schema as drop_schema  # noqa: F401 - fixtures used here
from tests.ingest.conftest import ingest_settings as ingest_settings  # noqa: F401

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def batch(source: str, prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        event(
            "spm.loan.repayment.v1",
            f"{prefix}-{i}",
            source,
            {
                "loan_id": f"L{i}",
                "client_id": f"C{i}",
                "transaction_id": f"{prefix}-{i}",
                "value_date": "2025-02-01",
                "amount": "100.00",
                "principal_paid": "80.00",
            },
        )
        for i in range(n)
    ]


async def _post_until_accepted(client: httpx.AsyncClient, body: list[dict[str, Any]]) -> Any:
    deadline = time.monotonic() + 120
    while True:
        response = await client.post("/v1/events/batch", json=body, headers=auth())
        if response.status_code == 202:
            return response.json()
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, "Kafka did not come back"
        await asyncio.sleep(1)


async def test_outage_then_exactly_once(
    ingest_settings: IngestSettings, drop_schema: None, private: PrivateInfra, unique: str
) -> None:
    await asyncio.to_thread(private.run, "kafka-start")
    settings = ingest_settings.model_copy(
        update={
            "kafka_request_timeout_ms": 3_000,
            "kafka_bootstrap_servers": private.kafka_bootstrap,
        }
    )
    source = f"core:{unique}"
    before, during = batch(source, "before", 50), batch(source, "during", 50)
    accepted_ids: list[str] = []
    tail = TopicTail(private.kafka_bootstrap)
    await tail.mark()
    async with running(settings) as (_, client):
        first = await client.post("/v1/events/batch", json=before, headers=auth())
        assert first.status_code == 202 and first.json()["accepted"] == 50
        accepted_ids += [e["id"] for e in before]
        try:
            await asyncio.to_thread(private.run, "kafka-stop")
            refused = await client.post("/v1/events/batch", json=during, headers=auth())
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["Retry-After"]) > 0
            assert "accepted" not in refused.json()
            single = await client.post("/v1/events", json=during[0], headers=auth())
            assert single.status_code == 503
            assert (await client.get("/readyz")).status_code == 503
        finally:
            await asyncio.to_thread(private.run, "kafka-start")
        body = await _post_until_accepted(client, during)
        assert body["accepted"] + body["duplicates"] == 50
        accepted_ids += [e["id"] for e in during]
        again = await client.post("/v1/events/batch", json=before + during, headers=auth())
        assert again.status_code == 202 and again.json()["duplicates"] == 100
        assert (await client.get("/readyz")).status_code == 200

    records = [r for r in await tail.read() if r.headers.get("ce_source") == source.encode()]
    counts = Counter(r.headers["ce_id"].decode() for r in records)
    assert set(counts) == set(accepted_ids)
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}
