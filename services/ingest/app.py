"""The ingest service's app factory and lifespan (``spm serve ingest``)."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topics import CLIENTS, COMPLAINTS, DEADLETTER, LOANS
from services.common.bus import Bus, BusError
from services.common.db import (
    Sessions,
    migrate_service,
    open_service_engine,
    ping,
)
from services.common.guard import RequestLimits
from services.common.http import create_service_app
from services.common.lifecycle import BusLease, Supervisor, every
from services.common.ratelimit import KeyRateLimit
from services.common.settings import CommonSettings
from services.common.telemetry import ensure_telemetry
from services.ingest.api import crm, events
from services.ingest.api.deps import IngestState
from services.ingest.config import SCHEMA, IngestSettings
from services.ingest.crm import CrmMapper
from services.ingest.errors import IngestError
from services.ingest.fineract import hooks as fineract_hooks
from services.ingest.fineract.running import fineract_consumer_running
from services.ingest.pipeline import IngestPipeline
from services.ingest.pseudonym import Pseudonymiser
from services.ingest.store import purge_dedup
from services.ingest.topics import suffixed, with_suffix
from services.ingest.validation import DateBounds, Validator

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
PRODUCED_TOPICS = (CLIENTS, LOANS, COMPLAINTS, DEADLETTER)

DESCRIPTION = """The door of SPM Monitor: core-banking and CRM systems send events here
(CloudEvents 1.0 structured JSON, input form of contract v1). Valid events are pseudonymised,
deduplicated on (source, id) and published to Kafka; `202` means Kafka acknowledged every
accepted event. Authenticate with `Authorization: Bearer <api key>` (scope `ingest:write`)."""


def pseudonymiser_of(settings: IngestSettings) -> Pseudonymiser:
    pepper = settings.pseudonym_pepper
    if pepper is None:
        raise IngestError("PSEUDONYM_PEPPER is not set: ingest cannot pseudonymise without it")
    return Pseudonymiser(pepper.get_secret_value())


def validator_of(settings: IngestSettings) -> Validator:
    bounds = DateBounds(settings.ingest_min_business_date, settings.ingest_max_future_days)
    return Validator(pseudonymiser_of(settings), settings.institution_currency, bounds)


@asynccontextmanager
async def pipeline_resources(
    settings: IngestSettings, bus: Bus | None = None
) -> AsyncIterator[tuple[IngestPipeline, AsyncEngine]]:
    """Migrated database, provisioned topics and a started producer, wired into a pipeline.

    Shared by the HTTP app and ``spm import csv``; everything is closed on exit, the bus only
    if it was opened here (without ``bus``).
    """
    schema = settings.ingest_db_schema
    await migrate_service(settings.database_url, schema, MIGRATIONS)
    lease = BusLease.of(settings, bus)
    engine = open_service_engine(settings.database_url, schema, SCHEMA)
    producer = with_suffix(lease.bus.producer(), settings.ingest_topic_suffix)
    try:
        await lease.bus.ensure_topics(suffixed(PRODUCED_TOPICS, settings.ingest_topic_suffix))
        await producer.start()
        pipeline = IngestPipeline(
            producer=producer,
            sessions=Sessions(engine),
            validator=validator_of(settings),
            publish_timeout_s=settings.ingest_publish_timeout_s,
        )
        try:
            yield pipeline, engine
        finally:
            await pipeline.close()
            await producer.stop()
    finally:
        await engine.dispose()
        await lease.release()


async def purge_dedup_once(pipeline: IngestPipeline, settings: IngestSettings) -> None:
    """Forget dedup keys older than ``INGEST_DEDUP_RETENTION_DAYS`` (the lifespan's loop)."""
    retention = timedelta(days=settings.ingest_dedup_retention_days)
    async with pipeline.sessions.write() as session:
        purged = await purge_dedup(session, retention)
    log.info("purged dedup keys", extra={"purged": purged})


def create_app(settings: CommonSettings, *, bus: Bus | None = None) -> FastAPI:
    """The ingest app; ``bus`` overrides the one the settings give (embedded mode, tests)."""
    config = IngestSettings.of(settings)
    ensure_telemetry("spm-ingest", config)
    pseudonymiser = pseudonymiser_of(config)
    crm_mapper = CrmMapper.load(
        config.ingest_crm_mapping,
        config.ingest_crm_source,
        config.institution_timezone,
        pseudonymiser,
    )
    loops = Supervisor("ingest")
    lease = BusLease.of(config, bus)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The order of services.common.lifecycle; the pipeline's bus is the lease's."""
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(lease.release)
            pipeline, engine = await stack.enter_async_context(
                pipeline_resources(config, lease.bus)
            )
            await stack.enter_async_context(fineract_consumer_running(config, lease.bus))
            stack.push_async_callback(loops.stop)
            purge = functools.partial(purge_dedup_once, pipeline, config)
            loops.start(every(config.ingest_dedup_purge_interval_s, purge, "dedup purge"), "purge")
            app.state.engine = engine
            app.state.ingest = IngestState(config, pipeline, crm_mapper)
            stack.callback(setattr, app.state, "ingest", None)
            yield

    app = create_service_app(
        service="ingest",
        title="SPM Monitor — ingest",
        description=DESCRIPTION,
        settings=config,
        routers=[events.router, crm.router, fineract_hooks.router],
        limits=request_limits(config),
        lifespan=lifespan,
        readiness=[lambda: _kafka_ready(lease.bus), lambda: _db_ready(app), loops.ready],
    )
    return app


BATCH_PATHS = ("/v1/events/batch",)
QUERY_KEY_PATHS = frozenset({"/v1/sources/fineract/hooks"})


def request_limits(config: IngestSettings) -> RequestLimits:
    """The batch route may be as large as INGEST_MAX_BODY_BYTES (the others have the common
    HTTP_MAX_BODY_BYTES); every request counts against
    the key's rate limit; the Fineract hook may carry its key in the query."""
    return RequestLimits.of(
        config,
        body_limits=dict.fromkeys(BATCH_PATHS, config.ingest_max_body_bytes),
        query_key_paths=QUERY_KEY_PATHS,
        rate_limit=KeyRateLimit(config.ingest_rate_limit),
    )


async def _kafka_ready(bus: Bus) -> bool:
    """The broker answers a metadata request (an admin round trip; topics already exist)."""
    try:
        await bus.ensure_topics(())
    except BusError:
        return False
    return True


async def _db_ready(app: FastAPI) -> bool:
    return await ping(getattr(app.state, "engine", None))
