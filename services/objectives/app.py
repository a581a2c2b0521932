"""The objectives service: objectives and targets over HTTP, their history, their events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.common.bus import Bus
from services.common.db import Sessions, ping
from services.common.http import create_service_app
from services.common.lifecycle import BusLease, Supervisor
from services.common.outbox import OutboxRelay
from services.common.settings import CommonSettings
from services.common.telemetry import ensure_telemetry
from services.objectives.api.deps import ObjectivesState
from services.objectives.api.objectives import router
from services.objectives.config import ObjectivesSettings
from services.objectives.models import outbox
from services.objectives.store import ObjectivesService, migrate_schema, open_engine

RELAY_STOP_S = 10.0
"""How long the outbox relay may take to publish what it holds at shutdown (then cancelled)."""


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
    loops = Supervisor("objectives")
    lease = BusLease.of(cfg, bus)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The order of services.common.lifecycle."""
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(lease.release)
            await migrate_schema(cfg)
            engine = app.state.engine = open_engine(cfg)
            stack.push_async_callback(engine.dispose)
            await lease.bus.ensure_topics([cfg.topic_spec])
            relay = OutboxRelay(
                engine,
                outbox,
                lease.bus,
                lock_name=f"spm-outbox:{cfg.objectives_db_schema}",
                batch_size=cfg.outbox_batch_size,
                poll_interval_s=cfg.outbox_poll_interval_s,
            )
            stack.push_async_callback(loops.stop)
            loops.start(
                relay.run(), "objectives-outbox-relay", stop=relay.stop, grace_s=RELAY_STOP_S
            )
            state = ObjectivesState(Sessions(engine, relay.notify), build_service(cfg))
            app.state.objectives = state
            stack.callback(setattr, app.state, "objectives", None)
            yield

    async def database_ready() -> bool:
        return await ping(getattr(app.state, "engine", None))

    app = create_service_app(
        service="objectives",
        title="SPM objectives",
        description="Social objectives and targets of the institution, versioned and audited.",
        settings=cfg,
        routers=[router],
        lifespan=lifespan,
        readiness=[database_ready, loops.ready],
    )
    return app
