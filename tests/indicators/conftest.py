"""A running indicator service per test, on Kafka + PostgreSQL and on the embedded mode
(in-process bus + SQLite): the same scenarios run on both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.envelope import CanonicalEvent
from services.common.auth import hash_key
from services.common.bus import Bus, KafkaBus, MemoryBus, Message
from services.indicators.app import create_app
from services.indicators.config import IndicatorSettings
from services.indicators.emitter import tick
from services.indicators.store import read_offsets
from tests.indicators.events import message
from tests.schemas import drop_schemas

READER_KEY = "reader-secret"
OTHER_KEY = "objectives-secret"
API_KEYS = json.dumps(
    [
        {"name": "reader", "sha256": hash_key(READER_KEY), "scopes": ["indicators:read"]},
        {"name": "other", "sha256": hash_key(OTHER_KEY), "scopes": ["objectives:read"]},
    ]
)
MODES = [
    pytest.param("kafka-postgres", marks=[pytest.mark.kafka, pytest.mark.postgres]),
    "memory-sqlite",
]


class Harness:
    def __init__(self, app: Any, bus: Bus, settings: IndicatorSettings) -> None:
        self.app = app
        self.bus = bus
        self.settings = settings
        self.service = app.state.indicators
        self.ends: dict[tuple[str, int], int] = {}
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://indicators",
            headers={"Authorization": f"Bearer {READER_KEY}"},
        )
        self.producer = bus.producer()

    async def send(self, events: Sequence[CanonicalEvent | Message], *, wait: bool = True) -> None:
        suffix = self.settings.indicators_topic_suffix
        msgs = [e if isinstance(e, Message) else message(e, suffix) for e in events]
        for delivery in await self.producer.send_many(msgs):
            key = (delivery.topic, delivery.partition)
            self.ends[key] = max(self.ends.get(key, 0), delivery.offset + 1)
        if wait:
            await self.caught_up()

    async def stored_offsets(self) -> dict[tuple[str, int], int]:
        async with self.service.sessions() as session:
            return await read_offsets(session, self.settings.indicators_group_id, list(self.ends))

    async def caught_up(self, limit_s: float = 60.0) -> None:
        """Wait until the stored offsets (what is committed) reach everything sent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while True:
            stored = await self.stored_offsets()
            if all(stored.get(tp, -1) >= end for tp, end in self.ends.items()):
                return
            if loop.time() > deadline:
                raise AssertionError(f"engine did not catch up: {stored} vs {self.ends}")
            await asyncio.sleep(0.05)

    async def restart(self) -> None:
        """Stop this instance and start a fresh one on the same database and topics."""
        await self.service.stop()
        self.app = create_app(self.settings, bus=self.bus)
        self.service = self.app.state.indicators
        await self.client.aclose()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://indicators",
            headers={"Authorization": f"Bearer {READER_KEY}"},
        )
        await self.service.start()

    async def tick(self, day: date) -> None:
        await tick(self.service.sessions, day)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(
            path, params={k: v for k, v in params.items() if v is not None}
        )

    async def value(
        self, code: str, segment: str = "all", as_of: str | None = None
    ) -> dict[str, Any]:
        r = await self.get("/v1/indicators", code=code, segment=segment, as_of=as_of)
        assert r.status_code == 200, r.text
        items = json.loads(r.text, parse_float=Decimal)["items"]
        assert len(items) == 1, items
        return dict(items[0])

    async def v(self, code: str, segment: str = "all", as_of: str | None = None) -> Any:
        return (await self.value(code, segment, as_of))["value"]


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings a test changes: ``@pytest.mark.parametrize("overrides", [{...}])``."""
    return {}


@pytest.fixture(params=MODES)
async def harness(
    request: pytest.FixtureRequest, tmp_path: Path, unique: str, overrides: dict[str, Any]
) -> AsyncIterator[Harness]:
    env: dict[str, Any] = {
        "api_keys": API_KEYS,
        "indicators_topic_suffix": f".{unique}",
        "indicators_group_id": f"indicators-{unique}",
        "indicators_db_schema": f"ind_{unique}",
        "indicators_emit_interval_seconds": 0.2,
        "indicators_gni_per_capita": Decimal("1000"),
    }
    env.update(overrides)
    bus: Bus
    if request.param == "kafka-postgres":
        bus = KafkaBus(request.getfixturevalue("kafka_bootstrap"))
        env["kafka_bootstrap_servers"] = request.getfixturevalue("kafka_bootstrap")
        env["database_url"] = request.getfixturevalue("postgres_url")
    else:
        bus = MemoryBus()
        env["database_url"] = f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}"
    settings = IndicatorSettings(**env)
    async with started(settings, bus) as h:
        yield h


@asynccontextmanager
async def started(settings: IndicatorSettings, bus: Bus) -> AsyncIterator[Harness]:
    """The service with its producer on ``bus``; stopped, the bus closed and (on PostgreSQL) its
    schema dropped afterwards."""
    h = Harness(create_app(settings, bus=bus), bus, settings)
    await h.service.start()
    await h.producer.start()
    try:
        yield h
    finally:
        await h.client.aclose()
        await h.producer.stop()
        await h.service.stop()
        await bus.close()
        await drop_schemas(settings.database_url, settings.indicators_db_schema)
