"""A database outage is a 503 + Retry-After naming the database, on every service.

Before, indicators answered 500 (asyncpg's bare ``OSError`` escaped the routes that did not
translate it), alerts 503 without Retry-After, and ingest blamed Kafka. Now the database
adapter (services.common.db) turns an unreachable server into ``DatabaseError`` where every
session gets its connections, and the shared app factory answers it.

The database is really gone: each service reaches the real PostgreSQL through a TCP port that
this test closes (listener and open connections), as a network partition or a stopped server
would. Kafka stays up, so the answer must name the database and not Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url

from services.alerts.app import create_app as alerts_app
from services.alerts.config import AlertSettings
from services.common.auth import hash_key
from services.indicators.app import create_app as indicators_app
from services.indicators.config import IndicatorSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from services.objectives.app import create_app as objectives_app
from services.objectives.config import ObjectivesSettings
from tests.alerts.servers import free_port
from tests.schemas import drop_schemas

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

KEY = "outage-admin-key"
KEYS = json.dumps([{"name": "admin", "sha256": hash_key(KEY), "scopes": ["admin"]}])


class ClosablePort:
    """A TCP port that forwards to PostgreSQL until :meth:`close` (then: connection refused)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


def _disbursal(source: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "outage-1",
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


@contextlib.asynccontextmanager
async def _serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://svc", headers=headers
        ) as client:
            yield client


async def test_every_service_answers_503_naming_the_database(
    postgres_url: str, kafka_bootstrap: str, unique: str
) -> None:
    real = make_url(postgres_url)
    gate = ClosablePort(real.host or "127.0.0.1", real.port or 5432)
    await gate.open()
    url = real.set(host="127.0.0.1", port=gate.port).render_as_string(hide_password=False)
    common: dict[str, Any] = {
        "database_url": url,
        "kafka_bootstrap_servers": kafka_bootstrap,
        "api_keys": KEYS,
        "kafka_request_timeout_ms": 5_000,
    }
    schemas = {
        "ingest": f"out_ingest_{unique}",
        "indicators": f"out_ind_{unique}",
        "objectives": f"out_obj_{unique}",
        "alerts": f"out_alerts_{unique}",
    }
    apps = {
        "ingest": ingest_app(
            IngestSettings(
                **common,
                pseudonym_pepper="outage-test-pepper-0123456789abcdef",
                ingest_db_schema=schemas["ingest"],
                ingest_topic_suffix=f"-{unique}",
            )
        ),
        "indicators": indicators_app(
            IndicatorSettings(
                **common,
                indicators_db_schema=schemas["indicators"],
                indicators_topic_suffix=f".{unique}",
                indicators_group_id=f"indicators-{unique}",
            )
        ),
        "objectives": objectives_app(
            ObjectivesSettings(
                **common,
                objectives_db_schema=schemas["objectives"],
                objectives_topic=f"test.objectives.{unique}",
            )
        ),
        "alerts": alerts_app(
            AlertSettings(
                **common,
                alerts_db_schema=schemas["alerts"],
                alerts_group_id=f"alerts-{unique}",
                alerts_indicators_topic=f"spm.indicators.v1-{unique}",
                alerts_objectives_topic=f"spm.objectives.v1-{unique}",
                alerts_topic=f"spm.alerts.v1-{unique}",
                alerts_deadletter_topic=f"spm.ingest.deadletter.v1-{unique}",
                alerts_smtp_port=free_port(),
            )
        ),
    }
    requests = {
        "ingest": ("POST", "/v1/events", _disbursal(f"core:{unique}")),
        "indicators": ("GET", "/v1/catalog", None),
        "objectives": ("GET", "/v1/objectives", None),
        "alerts": ("GET", "/v1/alerts", None),
    }
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(_serving(app)) for name, app in apps.items()
            }
            for name, (method, path, body) in requests.items():
                healthy = await clients[name].request(method, path, json=body)
                assert healthy.status_code < 300, (name, healthy.text)
            await gate.close()
            for name, (method, path, body) in requests.items():
                down = await clients[name].request(method, path, json=body)
                assert down.status_code == 503, (name, down.status_code, down.text)
                assert int(down.headers["Retry-After"]) > 0, name
                assert down.json()["detail"].startswith("database is unavailable"), name
                assert down.json()["errors"] == [{"field": "database", "reason": "unavailable"}]
    finally:
        await drop_schemas(postgres_url, *schemas.values())
