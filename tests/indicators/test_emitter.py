"""The value stream's emitter on real Kafka and PostgreSQL: leadership survives failed cycles."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import pytest

from services.common.bus import KafkaBus
from services.common.db import session_factory
from services.indicators.emitter import Emitter
from services.indicators.service import open_database
from tests.indicators.conftest import Harness
from tests.indicators.events import reg


def _closed_port() -> int:
    """A local port nothing listens on (a broker that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait(condition: Callable[[], bool], what: str, limit_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.05)


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.parametrize("harness", ["kafka-postgres"], indirect=True)
@pytest.mark.parametrize("overrides", [{"indicators_emitter": False}])
async def test_a_failed_cycle_keeps_no_lock(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Cycles that fail to publish (the broker down) release the emitter's lock each time: it
    once went back to the pool still held, and no emitter, that one included, was elected
    again: indicator values stopped being published, silently."""
    h = harness
    await h.send([reg("A", "2024-01-01")])  # a value to publish
    down = KafkaBus(f"127.0.0.1:{_closed_port()}")
    failing = Emitter(
        h.settings, h.service.db, h.service.sessions, down.producer(), asyncio.Event()
    )
    caplog.set_level(logging.WARNING, logger="services.indicators.emitter")
    stalled = asyncio.create_task(failing.run())
    db = open_database(h.settings)  # another instance: its own pool
    other = Emitter(h.settings, db, session_factory(db), h.producer, asyncio.Event())
    elected: asyncio.Task[None] | None = None
    try:
        await _wait(
            lambda: sum("cycle failed" in r.getMessage() for r in caplog.records) >= 2,
            "the emitter never tried the stopped broker twice",
        )
        elected = asyncio.create_task(other.run())  # elected between two failed cycles
        await _wait(lambda: other.published > 0, "the failed cycles left the lock held")
        assert failing.published == 0
    finally:
        tasks = [t for t in (stalled, elected) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await failing.close()
        await other.close()
        await db.dispose()
        await down.close()
