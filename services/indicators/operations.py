"""What an operator does to the engine's store from outside the running service: read its
progress (per-partition lag against the topics' ends, last batch, parameters in force), run the
daily tick once, rebuild every indicator into a fresh schema and consumer group, and work out the
settings that switch the service over to a rebuilt schema.

The rebuild is how a parameter the stored aggregates depend on changes (the service refuses to
start on a schema computed with other values): it runs the service's own engine, in this
process, on the new schema and group, until it has applied every event the topics held when it
started. The value stream's emitter stays off meanwhile (the running service still publishes).
Nothing here prints: ``spm indicators`` (spm/indicators_cli.py) renders the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.common.bus import Bus, TopicPartition, create_bus
from services.common.db import database_errors, is_sqlite, session_factory
from services.common.errors import SpmError
from services.common.lifecycle import BusLease
from services.indicators import models as m
from services.indicators import query
from services.indicators.config import IndicatorSettings
from services.indicators.emitter import tick
from services.indicators.errors import OperationError
from services.indicators.service import IndicatorService, open_database

TP = tuple[str, int]
ENDS_REFRESH_S = 10.0
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PartitionStatus:
    topic: str
    partition: int
    committed: int | None  # None: the engine never owned this partition in this schema/group
    end: int
    last_batch: datetime | None  # when its offset row last changed (a batch, or the assignment)

    @property
    def lag(self) -> int:
        return max(0, self.end - (self.committed or 0))


@dataclasses.dataclass(frozen=True)
class Status:
    schema: str
    group: str
    exists: bool  # the schema holds the engine's tables
    partitions: list[PartitionStatus]
    recorded: dict[str, str]  # the parameters the stored aggregates were computed with
    environment: dict[str, str]  # the parameters these settings would run with
    business_date: date | None

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def last_batch(self) -> datetime | None:
        return max((p.last_batch for p in self.partitions if p.last_batch), default=None)

    @property
    def mismatched(self) -> list[str]:
        """Parameters whose recorded value differs from the environment's (the service would
        refuse to start with these settings)."""
        return [
            k for k, v in self.environment.items() if k in self.recorded and self.recorded[k] != v
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "group": self.group,
            "exists": self.exists,
            "lag": self.lag,
            "last_batch": _iso(self.last_batch),
            "business_date": None if self.business_date is None else self.business_date.isoformat(),
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "committed": p.committed,
                    "end": p.end,
                    "lag": p.lag,
                    "last_batch": _iso(p.last_batch),
                }
                for p in self.partitions
            ],
            "parameters": self.recorded,
            "environment": self.environment,
            "mismatched": self.mismatched,
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def input_topics(settings: IndicatorSettings) -> list[str]:
    return [settings.clients_topic, settings.loans_topic, settings.complaints_topic]


def with_target(settings: IndicatorSettings, schema: str, group: str) -> IndicatorSettings:
    """The same settings on another schema and consumer group (validated as the service would)."""
    values = settings.model_dump()
    values.update(indicators_db_schema=schema, indicators_group_id=group)
    return type(settings).model_validate(values)


def require_kafka(settings: IndicatorSettings) -> None:
    if not settings.uses_kafka:
        raise OperationError(
            "KAFKA_BOOTSTRAP_SERVERS is not set: the operator commands work on the distributed "
            "mode (Kafka + PostgreSQL), as `spm serve indicators` runs"
        )


@contextlib.asynccontextmanager
async def _database(
    settings: IndicatorSettings,
) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    db = open_database(settings)
    try:
        yield db, session_factory(db)
    finally:
        await db.dispose()


async def _has_tables(db: AsyncEngine, settings: IndicatorSettings) -> bool:
    schema = None if is_sqlite(db) else settings.indicators_db_schema
    async with db.connect() as conn:
        found = await conn.run_sync(
            lambda sync: inspect(sync).has_table("consumer_offsets", schema=schema)
        )
    return bool(found)


async def committed(
    sessions: async_sessionmaker[AsyncSession], group: str
) -> dict[TP, tuple[int, datetime]]:
    """The engine's own offsets (stored with its effects) and when each last changed."""
    c = m.consumer_offsets.c
    async with sessions() as session:
        rows = await session.execute(
            select(c.topic, c.partition, c.next_offset, c.updated_at).where(c.group_id == group)
        )
        return {(t, p): (o, at) for t, p, o, at in rows}


async def _recorded(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[dict[str, str], date | None]:
    async with sessions() as session:
        rows = await session.execute(select(m.parameters.c.name, m.parameters.c.value))
        day = await query.business_date(session)
        return {str(n): str(v) for n, v in rows}, day


def _partitions(
    ends: Mapping[TopicPartition, int], stored: Mapping[TP, tuple[int, datetime]]
) -> list[PartitionStatus]:
    out = []
    for tp, end in ends.items():
        row = stored.get((tp.topic, tp.partition))
        out.append(
            PartitionStatus(
                tp.topic,
                tp.partition,
                None if row is None else row[0],
                end,
                None if row is None else row[1],
            )
        )
    return sorted(out, key=lambda p: (p.topic, p.partition))


async def status(settings: IndicatorSettings, bus: Bus | None = None) -> Status:
    """Where the engine of ``settings`` (its schema and group) stands."""
    require_kafka(settings)
    lease = BusLease.of(settings, bus)
    try:
        ends = await lease.bus.end_offsets(input_topics(settings))
    finally:
        await lease.release()
    with database_errors():
        async with _database(settings) as (db, sessions):
            exists = await _has_tables(db, settings)
            stored = await committed(sessions, settings.indicators_group_id) if exists else {}
            recorded, day = await _recorded(sessions) if exists else ({}, None)
    return Status(
        settings.indicators_db_schema,
        settings.indicators_group_id,
        exists,
        _partitions(ends, stored),
        recorded,
        settings.stored_parameters(),
        day,
    )


async def run_tick(
    settings: IndicatorSettings, today: date | None = None
) -> tuple[date | None, date | None]:
    """The engine's daily tick, once: the business date advances to today in the institution's
    time zone (never backwards), so ageing and inferred exits move on without new events.
    Returns the business date before and after."""
    day = today or datetime.now(ZoneInfo(settings.institution_timezone)).date()
    with database_errors():
        async with _database(settings) as (db, sessions):
            if not await _has_tables(db, settings):
                raise OperationError(
                    f"schema {settings.indicators_db_schema} holds no indicators yet: start the "
                    "service (or a rebuild) on it first"
                )
            async with sessions() as session:
                before = await query.business_date(session)
            await tick(sessions, day)
            async with sessions() as session:
                after = await query.business_date(session)
    return before, after


@dataclasses.dataclass
class Progress:
    done: int  # events applied, of those the topics held when the rebuild started
    total: int
    lag: int  # behind the topics' current ends (new events keep arriving)

    @property
    def finished(self) -> bool:
        return self.done >= self.total


class Rebuild:
    """The engine on a fresh schema and group, in this process, until it catches up.

    ``async with Rebuild(target) as rebuild`` migrates the schema, records (or checks) the
    parameters, and starts the engine; :meth:`progress` reads how far it got. Interrupted, it
    resumes where its last batch committed (the offsets live with the effects)."""

    def __init__(self, target: IndicatorSettings, in_force: IndicatorSettings) -> None:
        require_kafka(target)
        if target.indicators_db_schema == in_force.indicators_db_schema:
            raise OperationError(
                f"schema {target.indicators_db_schema} is the one in force: rebuild into a fresh "
                "one (--schema)"
            )
        if target.indicators_group_id == in_force.indicators_group_id:
            raise OperationError(
                f"group {target.indicators_group_id} is the running engine's: rebuilding in it "
                "would take its partitions (--group)"
            )
        self.settings = target.model_copy(update={"indicators_emitter": False})
        self.bus = create_bus(self.settings)
        self.service: IndicatorService | None = None
        self.target: dict[TopicPartition, int] = {}
        self._ends: dict[TopicPartition, int] = {}
        self._ends_at = 0.0
        self._last = Progress(0, 1, 1)

    async def __aenter__(self) -> Rebuild:
        try:
            self.service = IndicatorService(self.settings, self.bus)
            await self.service.start()
            self.target = await self.bus.end_offsets(input_topics(self.settings))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self._ends = dict(self.target)
        self._ends_at = asyncio.get_running_loop().time()
        total = sum(self.target.values())
        self._last = Progress(0, total, total)  # until a first read succeeds
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service = None
        await self.bus.close()

    def _running(self) -> IndicatorService:
        if self.service is None:
            raise OperationError("the rebuild is not running (use it with `async with`)")
        return self.service

    def check_running(self) -> None:
        """Raise if the engine stopped (its failure, if any, is in the message)."""
        for task in self._running().tasks:
            if task.done():
                failure = None if task.cancelled() else task.exception()
                raise OperationError(f"the rebuild's {task.get_name()} stopped: {failure!r}")

    async def progress(self) -> Progress:
        """How far the engine got. A failed read (the broker or the database slow to answer on a
        loaded machine) keeps the last figures: only the engine stopping ends a rebuild."""
        service = self._running()
        loop = asyncio.get_running_loop()
        if loop.time() - self._ends_at >= ENDS_REFRESH_S:
            self._ends_at = loop.time()
            try:
                self._ends = await self.bus.end_offsets(input_topics(self.settings))
            except SpmError as exc:
                log.info("indicators: end offsets not read (%s); keeping the last ones", exc)
        try:
            with database_errors():
                stored = await committed(service.sessions, self.settings.indicators_group_id)
        except SpmError as exc:
            log.info("indicators: progress not read (%s)", exc)
            return self._last
        at = {tp: stored.get((tp.topic, tp.partition), (0, None))[0] for tp in self._ends}
        done = sum(min(at.get(tp, 0), end) for tp, end in self.target.items())
        lag = sum(max(0, end - at.get(tp, 0)) for tp, end in self._ends.items())
        self._last = Progress(done, sum(self.target.values()), lag)
        return self._last


async def switch_settings(
    settings: IndicatorSettings, schema: str, group: str, max_lag: int
) -> tuple[dict[str, str], Status]:
    """The settings that put the service on a rebuilt schema and group: the two names plus the
    parameters recorded there (the service must run with those). Refuses a schema that holds
    no indicators, or one still more than ``max_lag`` events behind (the rebuild did not
    finish)."""
    target = with_target(settings, schema, group)
    state = await status(target)
    if not state.exists or not state.recorded:
        raise OperationError(
            f"schema {schema} holds no indicators: run `spm indicators rebuild` first"
        )
    if all(p.committed is None for p in state.partitions):
        raise OperationError(f"group {group} has no offsets in schema {schema}: wrong --group?")
    if state.lag > max_lag:
        raise OperationError(
            f"schema {schema} is {state.lag} events behind (more than --max-lag {max_lag}): "
            "let the rebuild finish (run it again: it resumes)"
        )
    out = {"INDICATORS_DB_SCHEMA": schema, "INDICATORS_GROUP_ID": group}
    out.update(sorted(state.recorded.items()))
    return out, state


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def update_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Set ``values`` in a ``KEY=VALUE`` file (docker compose ``env_file``, systemd
    ``EnvironmentFile``): existing keys are replaced in place, new ones appended, every other
    line kept."""
    lines = path.read_text().splitlines() if path.exists() else []
    pending = dict(values)
    out = []
    for line in lines:
        match = _ENV_LINE.match(line)
        if match and match.group(1) in pending:
            out.append(f"{match.group(1)}={pending.pop(match.group(1))}")
        else:
            out.append(line)
    out += [f"{key}={value}" for key, value in pending.items()]
    path.write_text("\n".join(out) + "\n")
