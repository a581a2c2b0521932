"""An objectives service per test module: its own PostgreSQL schema and its own topic."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.common.auth import hash_key
from services.common.bus import KafkaBus
from services.objectives.app import create_app
from services.objectives.config import ObjectivesSettings
from tests.schemas import drop_schemas

KEYS = {
    "alice": ("alice-key", ["objectives:read", "objectives:write"]),
    "bob": ("bob-key", ["objectives:read", "objectives:write"]),
    "dashboard": ("dashboard-key", ["objectives:read"]),
    "stranger": ("stranger-key", ["alerts:read"]),  # a valid key without objectives' scopes
}


def make_settings(postgres_url: str, kafka_bootstrap: str) -> ObjectivesSettings:
    suffix = uuid.uuid4().hex[:10]
    keys = [
        {"name": name, "sha256": hash_key(key), "scopes": scopes}
        for name, (key, scopes) in KEYS.items()
    ]
    return ObjectivesSettings(
        database_url=postgres_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        objectives_db_schema=f"test_objectives_{suffix}",
        objectives_topic=f"test.objectives.{suffix}",
        outbox_poll_interval_s=0.2,
        api_keys=json.dumps(keys),
    )


async def drop_schema(settings: ObjectivesSettings) -> None:
    await drop_schemas(settings.database_url, settings.objectives_db_schema)


@pytest.fixture(scope="module")
def settings(postgres_url: str, kafka_bootstrap: str) -> ObjectivesSettings:
    return make_settings(postgres_url, kafka_bootstrap)


@pytest.fixture(scope="module")
async def app(settings: ObjectivesSettings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
    await drop_schema(settings)


ClientFactory = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def client_as(app: Any) -> AsyncIterator[ClientFactory]:
    """``client_as("alice")``: an HTTP client with that principal's key."""
    clients: list[httpx.AsyncClient] = []

    def make(name: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {KEYS[name][0]}"} if name in KEYS else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://objectives", headers=headers
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[KafkaBus]:
    bus = KafkaBus(kafka_bootstrap)
    yield bus
    await bus.close()


def target(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "indicator": "women_borrower_share",
        "segment": "all",
        "direction": "at_least",
        "threshold": "0.60",
        "warning_threshold": "0.63",
        "for_days": 10,
        "severity": "warning",
        "notify": ["spm.officer@example.org", "management"],
        "effective_from": "2026-01-01",
        "effective_to": "2026-12-31",
    }
    body.update(overrides)
    return body


def objective(code: str, *targets: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "name": f"Objective {code}",
        "description": "test objective",
        "dimension": "D1",
        "owner": "SPM officer",
        "targets": list(targets) or [target()],
    }
    body.update(overrides)
    return body
