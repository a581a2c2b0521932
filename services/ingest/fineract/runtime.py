"""Running the Fineract consumer inside the ingest service (its lifespan) when enabled.

Wiring, in ``services/ingest/app.py``'s lifespan::

    async with fineract_consumer_running(config, own_bus):
        yield

and ``routers=[..., fineract_hooks.router]`` for ``POST /v1/sources/fineract/hooks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.common.bus import Bus
from services.common.settings import CommonSettings
from services.ingest.fineract.config import FineractSettings
from services.ingest.fineract.consumer import FineractConsumer
from services.ingest.fineract.store import migrate_db, open_engine

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 30.0


@asynccontextmanager
async def fineract_consumer_running(
    settings: CommonSettings, bus: Bus
) -> AsyncIterator[FineractConsumer | None]:
    """Migrate, start the consumer as a background task, stop it on exit; ``None`` when
    ``FINERACT_ENABLED`` is off."""
    config = FineractSettings.of(settings)
    if not config.fineract_enabled:
        yield None
        return
    await migrate_db(config)
    engine = open_engine(config)
    consumer = FineractConsumer(config, bus, engine)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop), name="fineract-consumer")
    task.add_done_callback(_report)
    try:
        yield consumer
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await engine.dispose()


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the Fineract consumer stopped", exc_info=task.exception())
