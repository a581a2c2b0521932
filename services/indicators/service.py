"""The running parts (engine, emitter, tick) of one indicator-service instance, and the
parameters the API answers with."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topics import CLIENTS, COMPLAINTS, DEADLETTER, INDICATORS, LOANS
from services.common.bus import Bus
from services.common.db import (
    Sessions,
    migrate_service,
    open_service_engine,
    ping,
    session_factory,
)
from services.common.lifecycle import Supervisor
from services.indicators import models as m
from services.indicators import query, store
from services.indicators.catalog import Seen
from services.indicators.config import IndicatorSettings
from services.indicators.consumers.engine import Engine, run_forever
from services.indicators.emitter import Emitter, run_ticks
from services.indicators.errors import ParametersChanged

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def open_database(settings: IndicatorSettings) -> AsyncEngine:
    return open_service_engine(settings.database_url, settings.indicators_db_schema, m.SCHEMA)


async def prepare(settings: IndicatorSettings, bus: Bus) -> None:
    """Migrate the schema and create the topics the service uses."""
    await migrate_service(settings.database_url, settings.indicators_db_schema, MIGRATIONS_DIR)
    specs = [
        dataclasses.replace(spec, name=settings.topic(spec.name))
        for spec in (CLIENTS, LOANS, COMPLAINTS, DEADLETTER, INDICATORS)
    ]
    await bus.ensure_topics(specs)


PARAMETERS_BEFORE = {"INDICATORS_DEFINITIONS": "1.0"}
"""Parameters recorded later than the first schemas: their value on a schema from before."""


class IndicatorService:
    """The running parts (engine, emitter, tick) of one instance; ``started`` between
    :meth:`start` and :meth:`stop` (the API answers 503 outside)."""

    def __init__(self, settings: IndicatorSettings, bus: Bus) -> None:
        self.settings = settings
        self.bus = bus
        self.db = open_database(settings)
        self.sessions = session_factory(self.db)
        self.reads = Sessions(self.db)  # the API's and start()'s: database errors translated
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
        self.tasks = Supervisor("indicators")
        self.started = False

    async def start(self, *, run: bool = True) -> None:
        await prepare(self.settings, self.bus)
        await self.check_parameters()
        await self.producer.start()
        if run:
            self.tasks.start(run_forever(self.engine), "engine")
            if self.settings.indicators_emitter:
                self.tasks.start(self.emitter.run(), "emitter")
            self.tasks.start(run_ticks(self.settings, self.sessions, self.engine.changed), "tick")
        self.started = True

    async def check_parameters(self) -> None:
        """Refuse to add to aggregates that were computed with other parameters: the sums would
        mix two definitions and no later event could make them right again."""
        wanted = self.settings.stored_parameters()
        async with self.reads.write() as session:
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
        """The order of services.common.lifecycle (the bus is the app's)."""
        self.started = False
        await self.tasks.stop()
        await self.emitter.close()
        await self.producer.stop()
        await self.db.dispose()

    async def ready(self) -> bool:
        return await ping(self.db) and self.tasks.running()

    @property
    def parameters(self) -> query.Parameters:
        return query.Parameters(
            self.settings.indicators_gni_per_capita,
            self.settings.indicators_min_cell_size,
            self.settings.indicators_poverty_line,
        )

    def seen(self, seen: dict[str, list[str]]) -> Seen:
        return query.catalog_seen(seen, self.settings.indicators_poverty_line)
