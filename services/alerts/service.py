"""The running parts of one alert-service instance: consumers, evaluation, the Kafka outbox
relay, the notification flusher and the sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import models as m
from services.alerts import store, targets
from services.alerts.action_tick import ActionTick
from services.alerts.clock import Clock, SystemClock
from services.alerts.config import AlertSettings
from services.alerts.consumers.handlers import Handlers, apply_targets
from services.alerts.consumers.loop import DeadLetters, Loop, Serial
from services.alerts.errors import AlertsError
from services.alerts.evaluation import Evaluator, Rules
from services.alerts.notify.channels import Channels
from services.alerts.notify.pipeline import Pipeline
from services.alerts.notify.sender import Sender
from services.common.aio import wait_event
from services.common.bus import Bus
from services.common.db import (
    Sessions,
    is_sqlite,
    migrate_service,
    open_service_engine,
    ping,
)
from services.common.errors import SpmError
from services.common.lifecycle import Supervisor, every
from services.common.outbox import OutboxRelay

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
PURGE_INTERVAL_S = 3600.0
RELAY_STOP_S = 10.0
"""How long the outbox relay may take to publish what it holds at shutdown (then cancelled):
cancelled while it closes its producer, it would leave the producer's connections open."""


class AlertService:
    def __init__(self, settings: AlertSettings, bus: Bus, clock: Clock | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.clock = clock or SystemClock()
        self.engine = open_service_engine(
            settings.database_url, settings.alerts_db_schema, m.SCHEMA
        )
        self.db = Sessions(self.engine)
        self.read = self.db.read
        self.routing = settings.routing()
        self.publisher = store.Publisher(settings.alerts_topic, settings.alerts_source)
        self.evaluator = Evaluator(Rules.of(settings), self.publisher, self.clock)
        handlers = Handlers(self.evaluator)
        group = settings.alerts_group_id
        serial = Serial(f"spm-alerts-evaluate:{settings.alerts_db_schema}")
        # SQLite has one writer: every writing task of this process takes the same lock there.
        embedded = is_sqlite(self.engine)
        self.write_lock = serial.lock if embedded else None
        self.flush_lock = serial.lock if embedded else asyncio.Lock()
        self.relay = OutboxRelay(
            self.engine, m.outbox, bus, lock_name=f"spm-alerts-outbox:{settings.alerts_db_schema}",
            poll_interval_s=0.5,
        )  # fmt: skip
        self.producer = bus.producer()
        dead_letters = DeadLetters(self.producer, settings.alerts_deadletter_topic)
        self.targets_loop = Loop(
            bus, self.db, f"{group}-targets", [settings.alerts_objectives_topic],
            handlers.targets, dead_letters, batch_size=settings.alerts_batch_size,
            after_batch=self._changed, serial=serial,
        )  # fmt: skip
        self.indicators_loop = Loop(
            bus, self.db, f"{group}-indicators", [settings.alerts_indicators_topic],
            handlers.indicators, dead_letters, batch_size=settings.alerts_batch_size,
            after_batch=self._changed, serial=serial,
        )  # fmt: skip
        self.pipeline = Pipeline(settings, self.routing, self.clock)
        self.action_publisher = store.Publisher(
            settings.alerts_actions_topic, settings.alerts_source
        )
        self.action_tick = ActionTick(
            settings, self.routing, self.clock, self.pipeline.templates, self.action_publisher
        )
        self.channels = Channels(settings, self.routing)
        self.sender = Sender(
            settings, self.db, self.channels, self.clock,
            serial.lock if embedded else asyncio.Lock(),
        )  # fmt: skip
        self.flush_wakeup = asyncio.Event()
        self.tasks = Supervisor("alerts")
        self.started = False

    def _changed(self) -> None:
        self.relay.notify()
        self.flush_wakeup.set()

    async def start(self, *, run: bool = True) -> None:
        await migrate_service(
            self.settings.database_url, self.settings.alerts_db_schema, MIGRATIONS_DIR
        )
        await self.bus.ensure_topics(self.settings.topic_specs())
        if not run:
            return
        await self.producer.start()
        await self._seed_from_api()
        await self.targets_loop.catch_up()
        purge = every(PURGE_INTERVAL_S, self.purge_once, "alerts: purge")
        self.tasks.start(self.targets_loop.run(), "alerts-targets")
        self.tasks.start(self.indicators_loop.run(), "alerts-indicators")
        self.tasks.start(
            self.relay.run(), "alerts-relay", stop=self.relay.stop, grace_s=RELAY_STOP_S
        )
        self.tasks.start(self._flush_forever(), "alerts-flush")
        self.tasks.start(self.sender.run(), "alerts-sender")
        self.tasks.start(purge, "alerts-purge")
        self.started = True

    async def stop(self) -> None:
        """The order of services.common.lifecycle (the bus is the app's)."""
        self.started = False
        await self.tasks.stop()
        await self.producer.stop()
        await self.channels.close()
        await self.engine.dispose()

    async def ready(self) -> bool:
        return await ping(self.engine) and self.tasks.running()

    async def flush_once(self) -> int:
        """Run the pipeline and the actions' tick once (the loop does this every
        ``ALERTS_FLUSH_INTERVAL_S``); one instance at a time (the pipeline's lock)."""
        async with self.flush_lock, self.db.write() as session:
            if not await self.pipeline.lock(session):
                return 0
            written = await self.pipeline.flush(session)
            written += await self.action_tick.run(session)
        if written:
            self.sender.wakeup.set()
        self.relay.notify()  # the tick's events
        return written

    async def _flush_forever(self) -> None:
        while True:
            try:
                await self.flush_once()
            except SpmError as exc:
                log.warning("alerts: flush failed (%s)", exc)
            await wait_event(self.flush_wakeup, self.settings.alerts_flush_interval_s)
            self.flush_wakeup.clear()

    async def purge_once(self) -> int:
        """Delete history older than ``ALERTS_RETENTION_DAYS`` (the loop does this hourly)."""
        before = self.clock.now() - timedelta(days=self.settings.alerts_retention_days)
        async with self.write() as session:
            deleted = await store.purge_history(session, before)
        if deleted:
            log.info("alerts: deleted %d history row(s) older than %s", deleted, before)
        return deleted

    async def _seed_from_api(self) -> None:
        url = self.settings.objectives_url
        if not url:
            return
        key = self.settings.alerts_objectives_api_key
        try:
            states = await targets.fetch_from_api(
                url, key.get_secret_value() if key else None, self.clock.now()
            )
            async with self.db.write() as session:
                await apply_targets(session, self.evaluator, states)
        except AlertsError as exc:
            log.warning("alerts: could not seed targets from %s (%s); the topic suffices", url, exc)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction, committed on success; the relay and flusher wake after it."""
        async with contextlib.AsyncExitStack() as stack:
            if self.write_lock is not None:
                await stack.enter_async_context(self.write_lock)
            async with self.db.write() as session:
                yield session
        self._changed()
