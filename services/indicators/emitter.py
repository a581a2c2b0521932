"""The value stream: publish ``spm.indicator.changed.v1`` when a value on the business date
changes (or the business date advances), one emitter at a time, in order per key.

Leadership is a PostgreSQL session advisory lock held on a dedicated connection (it is released
when that connection's session ends: the connection is discarded, never returned to the pool,
see :mod:`services.common.advisory`); SQLite is single-process, so the one emitter there is
trivially alone. A value is recorded as published only after the broker acknowledged it: a crash in
between republishes the same value (at least once, same content).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from contracts.events import IndicatorChanged
from services.common.advisory import LeadershipWait, discard, try_lock
from services.common.aio import raise_if_cancelled, wait_event
from services.common.bus import Message, Producer, event_message
from services.common.db import chunks, database_errors, is_sqlite, upsert
from services.common.errors import SpmError
from services.common.metrics import EmitLag
from services.common.telemetry import Trail
from services.indicators import models as m
from services.indicators import query, store
from services.indicators.api.render import number
from services.indicators.config import IndicatorSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("spm.indicators.emitter")

EVENT_TYPE = "spm.indicator.changed.v1"
SOURCE = "spm:indicators"
BUSY_INTERVALS = 5
"""While the engine is catching up, look for changes only every this many intervals: each look
reads every indicator, and the values in between are transient anyway."""


def _text(value: Decimal | None) -> str | None:
    return None if value is None else number(value)


class Emitter:
    def __init__(
        self,
        settings: IndicatorSettings,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        producer: Producer,
        changed: asyncio.Event,
        busy: Callable[[], bool] = lambda: False,
        trail: Trail | None = None,
    ) -> None:
        self.settings = settings
        self.busy = busy
        self.engine = engine
        self.sessions = sessions
        self.producer = producer
        self.changed = changed
        self.trail = trail or Trail()
        self.published = 0
        self._conn: AsyncConnection | None = None
        self._lock_key = f"spm-indicators-emitter:{settings.indicators_db_schema}"
        self._waiting = LeadershipWait(f"indicators emitter ({self._lock_key})")

    async def _lead(self) -> bool:
        if is_sqlite(self.engine):
            return True
        if self._conn is not None:
            try:  # the lock lives as long as this connection: make sure it still does
                await self._conn.execute(text("SELECT 1"))
                await self._conn.commit()
                return True
            except Exception:
                await self.close()
                raise
        conn = await self.engine.connect()
        try:
            got = await try_lock(conn, self._lock_key)
        except Exception:
            await discard(conn, self._lock_key)  # the lock may be held even if the commit failed
            raise
        if got:
            self._conn = conn
            log.info("indicators: this instance is the emitter")
            return True
        await conn.close()
        return False

    async def close(self) -> None:
        """Give up leadership: the lock's connection is discarded, not returned to the pool (a
        pooled connection keeps its session's lock, and after a failed cycle no emitter won it
        again)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await discard(conn, self._lock_key)

    async def run(self) -> None:
        interval = self.settings.indicators_emit_interval_seconds
        loop = asyncio.get_running_loop()
        last = loop.time()
        lag = EmitLag()
        while True:
            raise_if_cancelled()  # the producer's library still uses wait_for
            await wait_event(self.changed, interval)
            lag.saw(self.changed.is_set())
            if self.busy() and loop.time() - last < interval * BUSY_INTERVALS:
                await asyncio.sleep(interval)
                continue
            last = loop.time()
            try:
                with database_errors():
                    if not await self._lead():
                        self._waiting.lost()
                        continue
                    self._waiting.won()
                    self.changed.clear()
                    await self.emit_once()
                    lag.emitted()
            except SpmError as exc:
                log.warning("indicators: emitter cycle failed (%s)", exc)
                await self.close()
                await asyncio.sleep(interval)

    async def emit_once(self) -> int:
        """Publish every value that differs from the last published one; returns the count."""
        batches = self.trail.take()  # the batches applied before this snapshot is read
        async with self.sessions() as session:
            day = await query.business_date(session)
            if day is None:
                self.trail.give_back(batches)
                return 0
            values = await query.snapshot(
                session,
                day,
                query.Parameters(
                    self.settings.indicators_gni_per_capita,
                    0,
                    self.settings.indicators_poverty_line,
                ),
            )
            c = m.published.c
            rows = await session.execute(
                select(c.code, c.segment, c.as_of, c.value, c.numerator, c.denominator, c.n)
            )
            last = {(r[0], r[1]): tuple(r[2:]) for r in rows}
        now = datetime.now(UTC)
        messages: list[Message] = []
        updates: list[dict[str, Any]] = []
        for (code, segment), v in sorted(values.items()):
            current = (
                day.toordinal(),
                _text(v.value),
                _text(v.numerator),
                _text(v.denominator),
                v.n,
            )
            previous = last.get((code, segment))
            if previous == current:
                continue
            prev_value = None if previous is None or previous[1] is None else Decimal(previous[1])
            messages.append(self._message(code, segment, day, v, prev_value, now))
            updates.append(
                {"code": code, "segment": segment, "as_of": current[0], "value": current[1],
                 "numerator": current[2], "denominator": current[3], "n": current[4],
                 "published_at": now}
            )  # fmt: skip
        if not messages:
            self.trail.give_back(batches)
            return 0
        parent, links = Trail.relation(batches or self.trail.newest())
        # the records carry this span's traceparent: its parent is the newest batch that changed
        # something, its links the other batches since the last emission
        with tracer.start_as_current_span(
            "indicators.emit",
            context=parent,
            links=links,
            kind=SpanKind.PRODUCER,
            attributes={"messaging.batch.message_count": len(messages)},
        ):
            await self.producer.send_many(messages)
        async with self.sessions() as session, session.begin():
            stmt = upsert(session, m.published)
            stmt = stmt.on_conflict_do_update(
                index_elements=[m.published.c.code, m.published.c.segment],
                set_={
                    k: getattr(stmt.excluded, k) for k in updates[0] if k not in ("code", "segment")
                },
            )
            for chunk in chunks(updates):
                await session.execute(stmt, list(chunk))
        self.published += len(messages)
        return len(messages)

    def _message(
        self,
        code: str,
        segment: str,
        day: date,
        v: query.Value,
        previous: Decimal | None,
        now: datetime,
    ) -> Message:
        data = IndicatorChanged(
            code=code,
            segment=segment,
            as_of=day,
            value=v.value,
            numerator=v.numerator,
            denominator=v.denominator,
            n=v.n,
            previous_value=previous,
            computed_at=now,
        )
        return event_message(
            self.settings.output_topic, source=SOURCE, event_type=EVENT_TYPE, time=now, data=data
        )


async def tick(sessions: async_sessionmaker[AsyncSession], today: date) -> None:
    """The daily tick: advance the business date to ``today`` (never backwards)."""
    with database_errors():
        async with sessions() as session, session.begin():
            await store.raise_tick(session, today.toordinal())


async def run_ticks(
    settings: IndicatorSettings,
    sessions: async_sessionmaker[AsyncSession],
    changed: asyncio.Event,
) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(settings.institution_timezone)
    while True:
        if settings.indicators_follow_clock:
            try:
                await tick(sessions, datetime.now(tz).date())
                changed.set()
            except SpmError as exc:
                log.warning("indicators: tick failed (%s)", exc)
        await asyncio.sleep(settings.indicators_tick_seconds)
