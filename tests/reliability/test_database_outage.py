"""PostgreSQL down under a running ingest service (a private PostgreSQL, stopped and started
again; the shared one is never touched): the caller gets a 5xx it can retry, never a 2xx for
an event that was not taken; once the database is back, every event is on its topic exactly once.
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
from tests.ingest.conftest import PEPPER, TopicTail, api_keys_json, auth, event, of_source, running

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def registrations(source: str, prefix: str, n: int) -> list[dict[str, Any]]:
    data = {"branch_id": "B1", "gender": "female", "registered_on": "2025-01-02"}
    return [
        event("spm.client.registered.v1", f"{prefix}-{i}", source, {**data, "client_id": f"{i}"})
        for i in range(n)
    ]


async def _post_until_accepted(client: httpx.AsyncClient, body: list[dict[str, Any]]) -> Any:
    deadline = time.monotonic() + 120
    while True:
        response = await client.post("/v1/events/batch", json=body, headers=auth())
        if response.status_code == 202:
            return response.json()
        assert response.status_code >= 500, response.text  # never a 4xx blaming the caller
        assert time.monotonic() < deadline, "the service did not recover"
        await asyncio.sleep(0.5)


async def test_database_down_then_back_loses_and_doubles_nothing(
    private: PrivateInfra, kafka_bootstrap: str, unique: str
) -> None:
    private.run("pg-start")
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=private.database_url,
        pseudonym_pepper=PEPPER,
        api_keys=api_keys_json(),
        institution_currency="KES",
        ingest_db_schema=f"ingest_{unique}",
        kafka_request_timeout_ms=5_000,
    )
    source = f"core:{unique}"
    before, during = registrations(source, "before", 5), registrations(source, "during", 5)
    async with running(settings) as (_, client):
        tail = TopicTail(kafka_bootstrap)
        await tail.mark()
        accepted = await client.post("/v1/events/batch", json=before, headers=auth())
        assert accepted.status_code == 202, accepted.text

        private.run("pg-stop")
        refused = await client.post("/v1/events/batch", json=during, headers=auth())
        assert refused.status_code >= 500, refused.text  # what the caller sees: retry later
        assert refused.status_code == 503 and "Retry-After" in refused.headers, (
            refused.status_code,
            dict(refused.headers),
            refused.text,
        )
        assert (await client.get("/readyz")).status_code != 200

        private.run("pg-start")
        result = await _post_until_accepted(client, during)
        assert result["accepted"] + result["duplicates"] == len(during)
        again = await _post_until_accepted(client, before)  # the dedup survived the outage
        assert again["duplicates"] == len(before) and again["accepted"] == 0
        records = of_source(await tail.read(), source)
    counts = Counter(r.headers["ce_id"].decode() for r in records)
    assert set(counts) == {e["id"] for e in before + during}
    assert set(counts.values()) == {1}, counts
