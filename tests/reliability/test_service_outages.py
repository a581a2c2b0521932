"""Kafka stopped (then started again), then PostgreSQL stopped, under all four services running
(a private broker and database of this test's own, stopped for real; the shared ones are never
touched).

Each service answers 503 + Retry-After in the one error shape naming what is down: ingest's
``POST /v1/events`` (the route that needs Kafka) names Kafka; with the database stopped, every
service's read route names the database (indicators answered 500 there before).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.common.services import (
    SERVICES,
    assert_error_shape,
    registration,
    service_apps,
    serving,
)
from tests.infra import PrivateInfra

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ANSWER_WITHIN_S = 30.0
"""An outage is answered, not waited out (connect timeouts are 10 s, publishing 3 s here)."""
READS = {
    "ingest": ("POST", "/v1/events"),
    "indicators": ("GET", "/v1/catalog"),
    "objectives": ("GET", "/v1/objectives"),
    "alerts": ("GET", "/v1/alerts"),
}


async def test_kafka_then_database_stopped_is_503_naming_it_everywhere(
    private: PrivateInfra, unique: str
) -> None:
    private.run("pg-start")
    private.run("kafka-start")
    apps = service_apps(
        unique,
        database_url=private.database_url,
        kafka_bootstrap_servers=private.kafka_bootstrap,
        ingest_publish_timeout_s=3.0,
    )
    source = f"core:{unique}"
    async with contextlib.AsyncExitStack() as stack:
        clients = {n: await stack.enter_async_context(serving(apps[n])) for n in SERVICES}
        for name, (method, path) in READS.items():
            healthy = await clients[name].request(method, path, json=registration(source))
            assert healthy.status_code < 300, (name, healthy.text)

        private.run("kafka-stop")
        async with asyncio.timeout(ANSWER_WITHIN_S):
            down = await clients["ingest"].post(
                "/v1/events", json=registration(source, "while-kafka-is-down")
            )
        body = assert_error_shape(down, 503, "ingest, Kafka stopped")
        assert body["errors"] == [{"field": "kafka", "reason": "unavailable"}], body
        private.run("kafka-start")  # one outage at a time: the next must name the database

        private.run("pg-stop")
        for name, (method, path) in READS.items():
            event = registration(source, f"while-db-is-down-{name}")
            async with asyncio.timeout(ANSWER_WITHIN_S):
                response = await clients[name].request(method, path, json=event)
            body = assert_error_shape(response, 503, f"{name}, database stopped")
            assert body["errors"] == [{"field": "database", "reason": "unavailable"}], name
        private.run("pg-start")  # the services stop on running infrastructure
