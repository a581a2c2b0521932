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

import pytest
from sqlalchemy import make_url

from tests.alerts.servers import free_port
from tests.common.services import (
    SERVICES,
    assert_error_shape,
    drop_schemas,
    registration,
    service_apps,
    serving,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


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


async def test_every_service_answers_503_naming_the_database(
    postgres_url: str, kafka_bootstrap: str, unique: str
) -> None:
    real = make_url(postgres_url)
    gate = ClosablePort(real.host or "127.0.0.1", real.port or 5432)
    await gate.open()
    url = real.set(host="127.0.0.1", port=gate.port).render_as_string(hide_password=False)
    apps = service_apps(unique, database_url=url, kafka_bootstrap_servers=kafka_bootstrap)
    requests = {
        "ingest": ("POST", "/v1/events"),
        "indicators": ("GET", "/v1/catalog"),
        "objectives": ("GET", "/v1/objectives"),
        "alerts": ("GET", "/v1/alerts"),
    }
    body = registration(f"core:{unique}", "outage-1")
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {n: await stack.enter_async_context(serving(apps[n])) for n in SERVICES}
            for name, (method, path) in requests.items():
                healthy = await clients[name].request(method, path, json=body)
                assert healthy.status_code < 300, (name, healthy.text)
            await gate.close()
            for name, (method, path) in requests.items():
                down = await clients[name].request(method, path, json=body)
                answer = assert_error_shape(down, 503, name)
                assert answer["detail"].startswith("database is unavailable"), name
                assert answer["errors"] == [{"field": "database", "reason": "unavailable"}]
    finally:
        await drop_schemas(postgres_url, unique)
