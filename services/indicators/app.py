"""App factory of the indicator service: ``spm serve indicators`` (Kafka + PostgreSQL) or
in-process on the memory bus + SQLite (the embedded mode composes it)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topics import CLIENTS, COMPLAINTS, DEADLETTER, INDICATORS, LOANS
from services.common.auth import KeyRing
from services.common.bus import Bus, create_bus
from services.common.db import (
    Sessions,
    database_errors,
    migrate,
    open_service_engine,
    ping,
    service_database_url,
    session_factory,
)
from services.common.errors import SpmError
from services.common.guard import RequestLimits
from services.common.http import create_service_app
from services.common.scope import ScopePolicy
from services.common.settings import CommonSettings
from services.common.telemetry import ensure_telemetry
from services.indicators import models as m
from services.indicators import store
from services.indicators.api.routes import Runtime, router
from services.indicators.config import IndicatorSettings
from services.indicators.consumers.engine import Engine, run_forever
from services.indicators.emitter import Emitter, run_ticks

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def database_url(settings: IndicatorSettings) -> str:
    return service_database_url(settings.database_url, settings.indicators_db_schema)


def open_database(settings: IndicatorSettings) -> AsyncEngine:
    return open_service_engine(settings.database_url, settings.indicators_db_schema, m.SCHEMA)


async def prepare(settings: IndicatorSettings, bus: Bus) -> None:
    """Migrate the schema and create the topics the service uses."""
    await migrate(database_url(settings), settings.indicators_db_schema, MIGRATIONS_DIR)
    specs = [
        dataclasses.replace(spec, name=settings.topic(spec.name))
        for spec in (CLIENTS, LOANS, COMPLAINTS, DEADLETTER, INDICATORS)
    ]
    await bus.ensure_topics(specs)


PARAMETERS_BEFORE = {"INDICATORS_DEFINITIONS": "1.0"}
"""Parameters recorded later than the first schemas: their value on a schema from before."""


class ParametersChanged(SpmError):
    """A parameter the stored aggregates depend on differs from the one they were computed with."""


class Service:
    """The running parts (engine, emitter, tick) of one instance."""

    def __init__(self, settings: IndicatorSettings, bus: Bus) -> None:
        self.settings = settings
        self.bus = bus
        self.db = open_database(settings)
        self.sessions = session_factory(self.db)
        self.producer = bus.producer()
        self.engine = Engine(settings, bus, self.sessions, self.producer)
        self.emitter = Emitter(
            settings,
            self.db,
            self.sessions,
            self.producer,
            self.engine.changed,
            busy=lambda: self.engine.behind,
            trail=self.engine.trail,
        )
        self.tasks: list[asyncio.Task[Any]] = []

    async def start(self, *, run: bool = True) -> None:
        await prepare(self.settings, self.bus)
        await self.check_parameters()
        await self.producer.start()
        if run:
            self.tasks.append(asyncio.create_task(run_forever(self.engine), name="engine"))
            if self.settings.indicators_emitter:
                self.tasks.append(asyncio.create_task(self.emitter.run(), name="emitter"))
            self.tasks.append(
                asyncio.create_task(
                    run_ticks(self.settings, self.sessions, self.engine.changed), name="tick"
                )
            )

    async def check_parameters(self) -> None:
        """Refuse to add to aggregates that were computed with other parameters: the sums would
        mix two definitions and no later event could make them right again."""
        wanted = self.settings.stored_parameters()
        with database_errors():
            async with self.sessions() as session, session.begin():
                stored = await store.pin_parameters(session, wanted, PARAMETERS_BEFORE)
        changed = [
            f"{name} is {wanted[name]} but the stored indicators were computed with {stored[name]}"
            for name in wanted
            if stored[name] != wanted[name]
        ]
        if changed:
            raise ParametersChanged(
                "; ".join(changed) + f" (schema {self.settings.indicators_db_schema}). Set it back,"
                " or rebuild: run with a fresh INDICATORS_DB_SCHEMA and INDICATORS_GROUP_ID."
            )

    async def stop(self) -> None:
        pending = set(self.tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        for task in self.tasks:
            if not task.cancelled() and task.exception() is not None:
                log.warning("indicators: %s task failed: %r", task.get_name(), task.exception())
        self.tasks.clear()
        await self.emitter.close()
        await self.producer.stop()
        await self.db.dispose()

    async def ready(self) -> bool:
        return await ping(self.db) and all(not t.done() for t in self.tasks)


def create_app(settings: CommonSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    """The indicator service; ``bus`` lets the embedded mode share its in-process bus."""
    cfg = IndicatorSettings.of(settings)
    ensure_telemetry("spm-indicators", cfg)
    own_bus = bus is None
    the_bus = bus if bus is not None else create_bus(cfg)
    service = Service(cfg, the_bus)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()
            if own_bus:
                await the_bus.close()

    app = create_service_app(
        service="indicators",
        title="SPM Monitor — indicators",
        description="Rolling social performance indicators: values, series, breakdowns, catalog.",
        keyring=KeyRing.of(cfg),
        routers=[router],
        limits=RequestLimits.of(cfg),
        scope_policy=ScopePolicy.of(cfg),
        lifespan=lifespan,
        readiness=[service.ready],
    )
    app.state.indicators = Runtime(cfg, Sessions(service.db))
    app.state.service = service
    return app
