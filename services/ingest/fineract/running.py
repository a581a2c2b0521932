"""Running the Fineract consumer inside the ingest service (its lifespan) when enabled.

Entered by ``services/ingest/app.py``'s lifespan, which also routes
``POST /v1/sources/fineract/hooks`` (``fineract_hooks.router``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.common.bus import Bus
from services.common.lifecycle import Supervisor
from services.common.settings import CommonSettings
from services.ingest.fineract.config import FineractSettings
from services.ingest.fineract.consumer import FineractConsumer
from services.ingest.fineract.store import migrate_db, open_engine

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
    loops = Supervisor("ingest")
    loops.start(consumer.run(stop), "fineract-consumer", stop=stop.set, grace_s=STOP_TIMEOUT_S)
    try:
        yield consumer
    finally:
        await loops.stop()
        await engine.dispose()
