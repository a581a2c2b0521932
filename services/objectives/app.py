"""The objectives service: objectives and targets over HTTP, their history, their events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from services.common.auth import KeyRing
from services.common.bus import Bus
from services.common.db import DatabaseError, session_factory
from services.common.guard import RequestLimits
from services.common.http import create_service_app, error_body
from services.common.lifecycle import BusLease, Supervisor
from services.common.outbox import OutboxRelay
from services.common.scope import ScopePolicy
from services.common.settings import CommonSettings
from services.common.telemetry import ensure_telemetry
from services.objectives.api.deps import ObjectivesState
from services.objectives.api.objectives import router
from services.objectives.config import ObjectivesSettings
from services.objectives.db import migrate_schema, open_engine
from services.objectives.models import outbox
from services.objectives.service import (
    Invalid,
    NotFound,
    ObjectivesService,
    PreconditionRequired,
    StaleVersion,
)

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
            engine = open_engine(cfg)
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
            state = ObjectivesState(session_factory(engine), build_service(cfg), relay)
            app.state.objectives = state
            stack.callback(setattr, app.state, "objectives", None)
            yield

    async def database_ready() -> bool:
        state = getattr(app.state, "objectives", None)
        if not isinstance(state, ObjectivesState):
            return False
        try:
            async with state.read() as session:
                await session.execute(text("SELECT 1"))
        except DatabaseError:
            return False
        return True

    app = create_service_app(
        service="objectives",
        title="SPM objectives",
        description="Social objectives and targets of the institution, versioned and audited.",
        keyring=KeyRing.of(cfg),
        routers=[router],
        limits=RequestLimits.of(cfg),
        scope_policy=ScopePolicy.of(cfg),
        lifespan=lifespan,
        readiness=[database_ready, loops.ready],
    )
    _add_error_handlers(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    async def invalid(request: Request, exc: Exception) -> Response:
        errors = exc.errors if isinstance(exc, Invalid) else []
        return JSONResponse(
            error_body([(e.field, e.reason) for e in errors], "validation failed"),
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse(error_body([], str(exc)), status_code=status.HTTP_404_NOT_FOUND)

    async def stale(request: Request, exc: Exception) -> Response:
        current = exc.current if isinstance(exc, StaleVersion) else None
        return JSONResponse(
            error_body([("version", str(exc))], "stale version"),
            status_code=status.HTTP_409_CONFLICT,
            headers={"ETag": f'"{current}"'} if current is not None else None,
        )

    async def precondition(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            error_body([("If-Match", str(exc))], "version required"),
            status_code=status.HTTP_428_PRECONDITION_REQUIRED,
        )

    app.add_exception_handler(Invalid, invalid)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(StaleVersion, stale)
    app.add_exception_handler(PreconditionRequired, precondition)
