"""Unauthenticated, wrong-scope and wrong-source calls are refused; health needs no key."""

from __future__ import annotations

import httpx
import pytest

from services.ingest.config import IngestSettings
from tests.common.route_auth import assert_every_route_keyed
from tests.ingest.conftest import (
    LIMITED_KEY,
    LIMITED_SOURCE,
    READER_KEY,
    auth,
    event,
    running,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def registration(source: str, id_: str) -> dict[str, object]:
    data = {"client_id": "1", "branch_id": "B", "gender": "male", "registered_on": "2025-01-01"}
    return event("spm.client.registered.v1", id_, source, data)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch", "/v1/sources/crm/complaints"])
async def test_refused(client: httpx.AsyncClient, path: str, unique: str) -> None:
    body = registration(f"core:{unique}", "a1")
    payload = [body] if path.endswith("batch") else body
    missing = await client.post(path, json=payload)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    unknown = await client.post(path, json=payload, headers=auth("not-a-key"))
    assert unknown.status_code == 401
    wrong_scope = await client.post(path, json=payload, headers=auth(READER_KEY))
    assert wrong_scope.status_code == 403


async def test_every_route_needs_its_key(
    ingest_settings: IngestSettings, drop_schema: None
) -> None:
    async with running(ingest_settings) as (app, _):
        walked = await assert_every_route_keyed(app, wrong_scope_key=READER_KEY)
    assert ("POST", "/v1/events/batch") in walked


async def test_source_restriction(client: httpx.AsyncClient, unique: str) -> None:
    other = registration(f"core:{unique}", "a2")
    refused = await client.post("/v1/events", json=other, headers=auth(LIMITED_KEY))
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["field"] == "[0].source"
    mixed = [registration(LIMITED_SOURCE, f"ok-{unique}"), other]
    refused = await client.post("/v1/events/batch", json=mixed, headers=auth(LIMITED_KEY))
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "[1].source"
    crm = await client.post(
        "/v1/sources/crm/complaints", json={"Id": "x"}, headers=auth(LIMITED_KEY)
    )
    assert crm.status_code == 403
    allowed = registration(LIMITED_SOURCE, f"ok-{unique}")
    accepted = await client.post("/v1/events", json=allowed, headers=auth(LIMITED_KEY))
    assert accepted.status_code == 202


async def test_health_readiness_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    spec = (await client.get("/openapi.json")).json()
    post = spec["paths"]["/v1/events"]["post"]
    examples = post["requestBody"]["content"]["application/cloudevents+json"]["examples"]
    assert "spm.loan.disbursed.v1" in examples
    assert {"202", "413", "422", "503"} <= set(post["responses"])
    batch = spec["paths"]["/v1/events/batch"]["post"]["requestBody"]["content"]
    assert "application/x-ndjson" in batch
