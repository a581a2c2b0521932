"""The objectives service: objectives and targets over HTTP, their history, their events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.common.auth import KeyRing
from services.common.bus import Bus, create_bus
from services.common.db import Sessions, ping
from services.common.guard import RequestLimits
from services.common.http import create_service_app
from services.common.outbox import OutboxRelay
from services.common.scope import ScopePolicy
from services.common.settings import CommonSettings
from services.common.telemetry import ensure_telemetry
from services.objectives.api.deps import Runtime
from services.objectives.api.objectives import router
from services.objectives.config import ObjectivesSettings
from services.objectives.db import migrate_schema, open_engine
from services.objectives.models import outbox
from services.objectives.service import ObjectivesService

log = logging.getLogger(__name__)
RELAY_STOP_TIMEOUT_S = 10.0


def build_service(settings: ObjectivesSettings) -> ObjectivesService:
    return ObjectivesService(
        topic=settings.objectives_topic,
        source=settings.objectives_source,
        lock_name=f"spm-objectives-write:{settings.objectives_db_schema}",
        recipient_domains=settings.objectives_recipient_domains,
    )


def create_app(settings: CommonSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    """The objectives service; ``bus`` lets the embedded mode share its in-process bus."""
    cfg = ObjectivesSettings.of(settings)
    ensure_telemetry("spm-objectives", cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate_schema(cfg)
        engine = app.state.engine = open_engine(cfg)
        the_bus = bus if bus is not None else create_bus(cfg)
        try:
            await the_bus.ensure_topics([cfg.topic_spec])
            relay = OutboxRelay(
                engine,
                outbox,
                the_bus,
                lock_name=f"spm-outbox:{cfg.objectives_db_schema}",
                batch_size=cfg.outbox_batch_size,
                poll_interval_s=cfg.outbox_poll_interval_s,
            )
            task = asyncio.create_task(relay.run(), name="objectives-outbox-relay")
            app.state.runtime = Runtime(Sessions(engine, relay.notify), build_service(cfg))
            try:
                yield
            finally:
                relay.stop()
                try:
                    await asyncio.wait_for(task, RELAY_STOP_TIMEOUT_S)
                except TimeoutError:
                    log.warning("outbox relay did not stop in time; cancelled")
        finally:
            if bus is None:
                await the_bus.close()
            await engine.dispose()

    async def database_ready() -> bool:
        return await ping(getattr(app.state, "engine", None))

    app = create_service_app(
        service="objectives",
        title="SPM objectives",
        description="Social objectives and targets of the institution, versioned and audited.",
        keyring=KeyRing.of(cfg),
        routers=[router],
        limits=RequestLimits.of(cfg),
        scope_policy=ScopePolicy.of(cfg),
        lifespan=lifespan,
        readiness=[database_ready],
    )
    return app
