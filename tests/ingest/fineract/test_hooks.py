"""Fineract hooks: client CLOSE / WITHDRAW -> spm.client.exited.v1, through the real pipeline."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from services.ingest.pseudonym import Pseudonymiser
from tests.ingest.conftest import (
    LIMITED_KEY,
    PEPPER,
    READER_KEY,
    WRITER_KEY,
    TopicTail,
    auth,
    of_source,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

CLOSE = {
    "entityName": "CLIENT",
    "actionName": "CLOSE",
    "createdBy": 1,
    "createdByName": "mifos",
    "request": {
        "closureDate": "15 November 2026",
        "closureReasonId": 17,
        "dateFormat": "dd MMMM yyyy",
        "locale": "en",
    },
    "officeId": 2,
    "clientId": 1042,
    "response": {"commandId": 123, "resourceId": 1042, "clientId": 1042},
    "timestamp": "2026-11-15T14:30:00.123Z",
}


@pytest.fixture
async def hooks(
    ingest_settings: IngestSettings, drop_schema: None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ingest_settings)  # the ingest app serves the hooks router itself
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield client


@pytest.fixture
async def hook_tail(kafka_bootstrap: str, hooks: httpx.AsyncClient) -> TopicTail:
    t = TopicTail(kafka_bootstrap)
    await t.mark()
    return t


def headers(tenant: str, action: str = "CLOSE", key: str | None = WRITER_KEY) -> dict[str, str]:
    out = {
        "X-Fineract-Entity": "CLIENT",
        "X-Fineract-Action": action,
        "Fineract-Platform-TenantId": tenant,
        "X-Fineract-Endpoint": "https://fineract.example/fineract-provider",
    }
    return out | (auth(key) if key else {})


async def test_close_and_withdraw_become_client_exits_once(
    hooks: httpx.AsyncClient, hook_tail: TopicTail, unique: str
) -> None:
    tenant = f"t{unique}"
    source = f"fineract:{tenant}"
    response = await hooks.post("/v1/sources/fineract/hooks", json=CLOSE, headers=headers(tenant))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    again = await hooks.post("/v1/sources/fineract/hooks", json=CLOSE, headers=headers(tenant))
    assert again.status_code == 202 and again.json()["duplicates"] == 1

    withdraw = copy.deepcopy(CLOSE)
    withdraw["actionName"] = "WITHDRAW"
    withdraw["clientId"] = 1043
    withdraw["request"] = {
        "withdrawalDate": "2026-11-16",
        "withdrawalReasonId": 5,
        "dateFormat": "yyyy-MM-dd",
        "locale": "en",
    }
    withdraw["response"] = {"commandId": 124, "resourceId": 1043}
    response = await hooks.post(
        f"/v1/sources/fineract/hooks?api_key={WRITER_KEY}",
        json=withdraw,
        headers=headers(tenant, "WITHDRAW", key=None),
    )
    assert response.status_code == 202, response.text

    records = of_source(await hook_tail.read(), source)
    assert len(records) == 2
    pseudo = Pseudonymiser(PEPPER)
    by_client = {json.loads(r.value or b"")["client_pid"]: r for r in records}
    closed = by_client[pseudo.client_pid(source, "1042")]
    assert closed.topic == "spm.clients.v1"
    assert closed.headers["ce_type"] == b"spm.client.exited.v1"
    assert closed.headers["ce_id"] == b"hook:123:CLOSE"
    assert json.loads(closed.value or b"") == {
        "client_pid": pseudo.client_pid(source, "1042"),
        "branch_id": "2",
        "exited_on": "2026-11-15",
        "exit_type": "voluntary",
        "reason_code": "17",
    }
    withdrawn = json.loads(by_client[pseudo.client_pid(source, "1043")].value or b"")
    assert withdrawn["exited_on"] == "2026-11-16" and withdrawn["reason_code"] == "5"


async def test_other_hooks_are_acknowledged_and_ignored(
    hooks: httpx.AsyncClient, unique: str
) -> None:
    activate = {**CLOSE, "actionName": "ACTIVATE"}
    response = await hooks.post(
        "/v1/sources/fineract/hooks", json=activate, headers=headers(f"t{unique}", "ACTIVATE")
    )
    assert response.status_code == 202
    assert response.json()["accepted"] == 0 and "ignored" in response.json()


@pytest.mark.parametrize(
    ("key", "code"), [(None, 401), ("wrong-key", 401), (READER_KEY, 403), (LIMITED_KEY, 403)]
)
async def test_credentials_are_required(
    hooks: httpx.AsyncClient, unique: str, key: str | None, code: int
) -> None:
    response = await hooks.post(
        "/v1/sources/fineract/hooks", json=CLOSE, headers=headers(f"t{unique}", key=key)
    )
    assert response.status_code == code


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"request": {"closureDate": "sometime", "dateFormat": "dd MMMM yyyy"}}, "data.exited_on"),
        ({"clientId": None, "response": {}}, "data.client_id"),
    ],
)
async def test_bad_hook_names_the_field(
    hooks: httpx.AsyncClient, unique: str, change: dict[str, Any], field: str
) -> None:
    body = {**CLOSE, **change}
    response = await hooks.post(
        "/v1/sources/fineract/hooks", json=body, headers=headers(f"t{unique}")
    )
    assert response.status_code == 422, response.text
    assert any(e["field"].endswith(field) for e in response.json()["errors"]), response.json()


async def test_missing_tenant_is_refused(hooks: httpx.AsyncClient) -> None:
    h = headers("x")
    del h["Fineract-Platform-TenantId"]
    response = await hooks.post("/v1/sources/fineract/hooks", json=CLOSE, headers=h)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Fineract-Platform-TenantId"
