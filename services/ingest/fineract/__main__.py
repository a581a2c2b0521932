"""``python -m services.ingest.fineract``: the Fineract consumer on its own (settings from env)."""

from __future__ import annotations

import asyncio
import logging
import signal

from services.common.bus import create_bus
from services.ingest.fineract.config import FineractSettings
from services.ingest.fineract.consumer import FineractConsumer
from services.ingest.fineract.store import migrate_db, open_engine


async def main() -> None:
    settings = FineractSettings()
    await migrate_db(settings)
    bus = create_bus(settings)
    engine = open_engine(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await FineractConsumer(settings, bus, engine).run(stop)
    finally:
        await engine.dispose()
        await bus.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(main())
