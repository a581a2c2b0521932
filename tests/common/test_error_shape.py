"""Every status the four services answer, in the one error shape (services.common.errors).

Walks ingest, indicators, objectives and alerts: the request guard's refusals (401 without a
key, 413, 429), the auth dependency's 403 (a key without the route's scope: FastAPI's bare
``{"detail"}`` before), the framework's 404 and 405, each service's own 4xx (404, 409, 422,
428), and 503 + Retry-After while a service has not started (an ``assert`` -> 500 before in
three of them). The outages of the database and Kafka are asserted with both really stopped in
tests/reliability/test_service_outages.py.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest

from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from tests.common.services import (
    KEYS,
    NO_SCOPE_KEY,
    SERVICES,
    assert_error_shape,
    client,
    drop_schemas,
    registration,
    service_apps,
    serving,
)
from tests.objectives.conftest import objective, target

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

KEYED = {
    "ingest": ("POST", "/v1/events"),
    "indicators": ("GET", "/v1/catalog"),
    "objectives": ("GET", "/v1/objectives"),
    "alerts": ("GET", "/v1/alerts"),
}
"""One route of each service that needs a scope."""

OWN_REFUSALS: dict[str, list[tuple[int, str, str, dict[str, Any]]]] = {
    "ingest": [
        (422, "POST", "/v1/events", {"content": b"{not json"}),
        (422, "POST", "/v1/events/batch", {"content": b"[1, "}),
    ],
    "indicators": [
        (422, "GET", "/v1/indicators?segment=nowhere", {}),
        (404, "GET", "/v1/indicators/NO_SUCH_CODE/series", {}),
        (404, "GET", "/v1/indicators?segment=branch:never-seen", {}),
    ],
    "objectives": [
        (422, "POST", "/v1/objectives", {"json": {}}),
        (404, "GET", "/v1/objectives/no-such-objective", {}),
        (428, "PATCH", "/v1/objectives/no-such-objective", {"json": {"reason": "walk"}}),
    ],
    "alerts": [
        (422, "POST", "/v1/silences", {"json": {}}),
        (404, "GET", "/v1/alerts/no-such-alert", {}),
        (404, "POST", "/v1/alerts/no-such-alert/ack", {}),
    ],
}
"""Each service's own refusals: (status, method, path, request arguments)."""


async def test_every_status_of_every_service_answers_the_one_shape(
    postgres_url: str, kafka_bootstrap: str, unique: str
) -> None:
    apps = service_apps(unique, database_url=postgres_url, kafka_bootstrap_servers=kafka_bootstrap)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for name, app in apps.items():
                admin = await stack.enter_async_context(serving(app))
                method, path = KEYED[name]
                async with client(app, key=None) as anonymous:
                    body = assert_error_shape(
                        await anonymous.request(method, path), 401, f"{name} 401"
                    )
                    assert body["errors"][0]["field"] == "Authorization", name
                async with client(app, key=NO_SCOPE_KEY) as unscoped:
                    body = assert_error_shape(
                        await unscoped.request(method, path, json={}), 403, f"{name} 403"
                    )
                    assert "lacks scope" in body["errors"][0]["reason"], name
                assert_error_shape(await admin.get("/v1/no-such-route"), 404, f"{name} 404")
                assert_error_shape(await admin.delete("/v1/me"), 405, f"{name} 405")
                too_large = b"x" * (2 * 1024 * 1024)
                assert_error_shape(
                    await admin.post("/v1/me", content=too_large), 413, f"{name} 413"
                )
                for status, verb, route, arguments in OWN_REFUSALS[name]:
                    response = await admin.request(verb, route, **arguments)
                    assert_error_shape(response, status, f"{name} {verb} {route}")
                if name == "objectives":
                    await _stale_version_is_409(admin)
    finally:
        await drop_schemas(postgres_url, unique)


async def test_a_service_not_started_answers_503_with_retry_after(unique: str) -> None:
    """The lifespan has not run: no state to serve from, 503 naming the service (the database
    URL is never reached: nothing connects before the lifespan)."""
    apps = service_apps(unique, database_url="postgresql://spm@127.0.0.1:1/none")
    for name in SERVICES:
        method, path = KEYED[name]
        async with client(apps[name]) as admin:
            response = await admin.request(method, path, json=registration(f"core:{unique}"))
        body = assert_error_shape(response, 503, f"{name} not started")
        assert body["errors"][0]["field"] == "service", name


async def _stale_version_is_409(admin: httpx.AsyncClient) -> None:
    """A change based on a version that is no longer the objective's: 409 with its ETag."""
    created = await admin.post("/v1/objectives", json=objective("err-409", target()))
    assert created.status_code == 201, created.text
    objective_id = created.json()["id"]
    stale = await admin.patch(
        f"/v1/objectives/{objective_id}",
        json={"reason": "based on a version that never was"},
        headers={"If-Match": '"99"'},
    )
    assert_error_shape(stale, 409, "objectives stale version")
    assert stale.headers.get("ETag"), "a 409 names the current version"


async def test_over_the_rate_limit_is_429_with_retry_after() -> None:
    """Ingest limits requests per key: past it, 429 + Retry-After in the one shape (the guard
    answers before any route, so the service need not run)."""
    limited = ingest_app(
        IngestSettings(
            api_keys=KEYS,
            database_url="postgresql://spm@127.0.0.1:1/none",
            pseudonym_pepper="walk-test-pepper-0123456789abcdef0123",
            ingest_rate_limit="1/minute",
        )
    )
    async with client(limited) as admin:
        first = await admin.post("/v1/events", json={})
        response = await admin.post("/v1/events", json={})
    assert first.status_code != 429, first.text
    assert_error_shape(response, 429, "ingest 429")
    assert int(response.headers["Retry-After"]) > 0
