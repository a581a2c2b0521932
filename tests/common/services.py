"""The four services side by side, for tests that walk all of them (error shape, outages).

:func:`service_apps` builds ingest, indicators, objectives and alerts on one database and one
broker, each in schemas and topics of its own (``unique``); :func:`serving` runs one app's
lifespan and gives a client with an admin key; :func:`drop_schemas` removes what they made.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from services.alerts.app import create_app as alerts_app
from services.alerts.config import AlertSettings
from services.common.auth import hash_key
from services.common.db import create_engine
from services.indicators.app import create_app as indicators_app
from services.indicators.config import IndicatorSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from services.objectives.app import create_app as objectives_app
from services.objectives.config import ObjectivesSettings
from tests.alerts.servers import free_port

ADMIN_KEY = "walk-admin-key"
NO_SCOPE_KEY = "walk-no-scope-key"
KEYS = json.dumps(
    [
        {"name": "admin", "sha256": hash_key(ADMIN_KEY), "scopes": ["admin"]},
        {"name": "nobody", "sha256": hash_key(NO_SCOPE_KEY), "scopes": []},
    ]
)
SERVICES = ("ingest", "indicators", "objectives", "alerts")


def schemas(unique: str) -> dict[str, str]:
    return {name: f"walk_{name[:4]}_{unique}" for name in SERVICES}


def service_apps(unique: str, **common: Any) -> dict[str, FastAPI]:
    """The four apps; ``common`` are settings they share (``database_url``, Kafka, limits)."""
    common = {"api_keys": KEYS, "kafka_request_timeout_ms": 5_000, **common}
    schema = schemas(unique)
    return {
        "ingest": ingest_app(
            IngestSettings(
                **common,
                pseudonym_pepper="walk-test-pepper-0123456789abcdef0123",
                ingest_db_schema=schema["ingest"],
                ingest_topic_suffix=f"-{unique}",
            )
        ),
        "indicators": indicators_app(
            IndicatorSettings(
                **common,
                indicators_db_schema=schema["indicators"],
                indicators_topic_suffix=f".{unique}",
                indicators_group_id=f"indicators-{unique}",
            )
        ),
        "objectives": objectives_app(
            ObjectivesSettings(
                **common,
                objectives_db_schema=schema["objectives"],
                objectives_topic=f"test.objectives.{unique}",
            )
        ),
        "alerts": alerts_app(
            AlertSettings(
                **common,
                alerts_db_schema=schema["alerts"],
                alerts_group_id=f"alerts-{unique}",
                alerts_indicators_topic=f"spm.indicators.v1-{unique}",
                alerts_objectives_topic=f"spm.objectives.v1-{unique}",
                alerts_topic=f"spm.alerts.v1-{unique}",
                alerts_deadletter_topic=f"spm.ingest.deadletter.v1-{unique}",
                alerts_smtp_port=free_port(),
            )
        ),
    }


def client(app: FastAPI, key: str | None = ADMIN_KEY) -> httpx.AsyncClient:
    """A client of ``app`` in-process (no lifespan run), with ``key`` unless None."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://svc", headers=headers)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` started (its lifespan) and a client with the admin key."""
    async with app.router.lifespan_context(app), client(app) as started:
        yield started


async def drop_schemas(database_url: str, unique: str) -> None:
    engine = create_engine(database_url, "public")
    try:
        async with engine.begin() as conn:
            for schema in schemas(unique).values():
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def registration(source: str, event_id: str = "walk-1") -> dict[str, Any]:
    """One valid event for ingest."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": "spm.client.registered.v1",
        "time": "2025-03-03T08:30:00+03:00",
        "data": {
            "client_id": "C1",
            "branch_id": "B1",
            "gender": "female",
            "registered_on": "2025-01-02",
        },
    }


def assert_error_shape(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    """``response`` answers ``status`` in the one error shape: a ``detail`` message and every
    field at fault with its reason (at least one)."""
    assert response.status_code == status, (what, response.status_code, response.text)
    body = response.json()
    assert set(body) == {"detail", "errors"}, (what, body)
    assert isinstance(body["detail"], str) and body["detail"], (what, body)
    assert body["errors"], (what, body)
    for error in body["errors"]:
        assert set(error) == {"field", "reason"}, (what, body)
        assert isinstance(error["field"], str) and error["field"], (what, body)
        assert isinstance(error["reason"], str) and error["reason"], (what, body)
    if status == 503:
        assert int(response.headers["Retry-After"]) > 0, what
    assert isinstance(body, dict)
    return body
