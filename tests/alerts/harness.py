"""An alert service on real Kafka + PostgreSQL with a manual clock, and helpers to feed it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from contracts.envelope import CanonicalEvent, to_kafka
from contracts.events import IndicatorChanged, TargetChanged
from services.alerts import models as m
from services.alerts.app import create_app
from services.alerts.config import AlertSettings
from services.alerts.service import AlertService
from services.common.auth import hash_key
from services.common.bus import Bus, KafkaBus, Message
from services.common.offsets import load_offsets

READER = "alerts-reader-secret"
ACKER = "alerts-acker-secret"
OTHER = "indicators-reader-secret"
API_KEYS = json.dumps(
    [
        {"name": "reader", "sha256": hash_key(READER), "scopes": ["alerts:read"]},
        {"name": "ops-lead", "sha256": hash_key(ACKER), "scopes": ["alerts:read", "alerts:ack"]},
        {"name": "other", "sha256": hash_key(OTHER), "scopes": ["indicators:read"]},
    ]
)
START = date(2025, 6, 2)  # a Monday


def business_days(n: int, start: date = START) -> list[date]:
    out: list[date] = []
    day = start
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def settings_for(
    kafka: str, database: str, unique: str, *, smtp_port: int, routes: dict[str, Any], **extra: Any
) -> AlertSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "database_url": database,
        "api_keys": API_KEYS,
        "alerts_db_schema": f"alerts_{unique}",
        "alerts_group_id": f"alerts-{unique}",
        "alerts_indicators_topic": f"spm.indicators.v1-{unique}",
        "alerts_objectives_topic": f"spm.objectives.v1-{unique}",
        "alerts_topic": f"spm.alerts.v1-{unique}",
        "alerts_actions_topic": f"spm.actions.v1-{unique}",
        "alerts_deadletter_topic": f"spm.ingest.deadletter.v1-{unique}",
        "alerts_routes": json.dumps(routes),
        "alerts_smtp_host": "127.0.0.1",
        "alerts_smtp_port": smtp_port,
        "alerts_group_wait_s": 0,
        "alerts_group_interval_s": 60,
        "alerts_repeat_interval_s": 3600,
        "alerts_flush_interval_s": 0.2,
        "alerts_send_backoff_s": 2,
        "alerts_nodata_grace_s": 0,  # values arrive here as fast as the test sends them
    }
    values.update(extra)
    return AlertSettings(**values)


def target(
    target_id: str = "t-women",
    *,
    indicator: str = "women_borrower_share",
    segment: str = "all",
    lower: str | None = "0.60",
    upper: str | None = None,
    warning_lower: str | None = None,
    for_days: int = 2,
    severity: str = "warning",
    notify: Sequence[str] = ("ops",),
    status: str = "active",
    owner: str | None = None,
) -> TargetChanged:
    return TargetChanged(
        target_id=target_id,
        objective_id="obj-1",
        objective_code="women-outreach",
        objective_name="Reach women entrepreneurs",
        dimension="D1",
        status=status,
        indicator=indicator,
        segment=segment,
        direction="at_least" if upper is None else ("within" if lower else "at_most"),
        lower=Decimal(lower) if lower else None,
        upper=Decimal(upper) if upper else None,
        warning_lower=Decimal(warning_lower) if warning_lower else None,
        for_days=for_days,
        severity=severity,
        notify=tuple(notify),
        effective_from=date(2025, 1, 1),
        version=1,
        changed_at=datetime(2025, 1, 1, tzinfo=UTC),
        owner=owner,
    )


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now


class Harness:
    def __init__(self, settings: AlertSettings, bus: Bus, clock: ManualClock) -> None:
        self.settings = settings
        self.bus = bus
        self.clock = clock
        self.app = create_app(settings, bus=bus, clock=clock)
        self.service: AlertService = self.app.state.alerts
        self.producer = bus.producer()
        self.ends: dict[tuple[str, str, int], int] = {}
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://alerts"
        )

    @classmethod
    async def start(cls, settings: AlertSettings, bus: Bus | None = None) -> Harness:
        bus = bus or KafkaBus(settings.kafka_bootstrap_servers or "")
        h = cls(settings, bus, ManualClock(datetime(2025, 6, 2, 8, 0, tzinfo=UTC)))
        await h.producer.start()
        await h.service.start()
        return h

    async def stop(self) -> None:
        await self.client.aclose()
        await self.service.stop()
        await self.producer.stop()
        await self.bus.close()

    def auth(self, key: str = ACKER) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def _send(self, group: str, event: CanonicalEvent, topic: str) -> None:
        record = to_kafka(event)
        delivery = await self.producer.send(
            Message(topic, record.value, record.key, tuple(record.headers))
        )
        key = (group, delivery.topic, delivery.partition)
        self.ends[key] = max(self.ends.get(key, 0), delivery.offset + 1)

    async def targets(self, *states: TargetChanged) -> None:
        for data in states:
            event = CanonicalEvent(
                id=str(uuid.uuid4()), source="spm:objectives", type="spm.target.changed.v1",
                time=datetime.now(UTC), subject=data.target_id, data=data,
            )  # fmt: skip
            await self._send(
                f"{self.settings.alerts_group_id}-targets",
                event,
                self.settings.alerts_objectives_topic,
            )
        await self.caught_up()

    async def values(
        self,
        day: date,
        *points: tuple[str, str, str | None],
        wait: bool = True,
        figures: tuple[str, str] | None = None,
    ) -> None:
        """Indicator values ``(code, segment, value)`` on business date ``day``; ``figures`` is
        their (numerator, denominator)."""
        for code, segment, value in points:
            data = IndicatorChanged(
                code=code, segment=segment, as_of=day,
                value=None if value is None else Decimal(value),
                numerator=Decimal(figures[0]) if figures else None,
                denominator=Decimal(figures[1]) if figures else None, computed_at=datetime.now(UTC),
            )  # fmt: skip
            event = CanonicalEvent(
                id=str(uuid.uuid4()), source="spm:indicators", type="spm.indicator.changed.v1",
                time=datetime.now(UTC), data=data,
            )  # fmt: skip
            await self._send(
                f"{self.settings.alerts_group_id}-indicators",
                event,
                self.settings.alerts_indicators_topic,
            )
        if wait:
            await self.caught_up()

    async def caught_up(self, within: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            done = True
            async with self.service.db() as session:
                for (group, topic, partition), end in self.ends.items():
                    stored = await load_offsets(
                        session, m.consumer_offsets, group, [(topic, partition)]
                    )
                    done = done and stored.get((topic, partition), -1) >= end
            if done:
                return
            if loop.time() > deadline:
                raise AssertionError("the alert service did not catch up")
            await asyncio.sleep(0.05)

    async def alerts(self, kind: str | None = None) -> list[dict[str, Any]]:
        async with self.service.db() as session:
            stmt = select(m.alerts).order_by(m.alerts.c.created_at)
            if kind:
                stmt = stmt.where(m.alerts.c.kind == kind)
            return [dict(r._mapping) for r in (await session.execute(stmt)).all()]

    async def notifications(self) -> list[dict[str, Any]]:
        async with self.service.db() as session:
            stmt = select(m.notifications).order_by(m.notifications.c.created_at)
            return [dict(r._mapping) for r in (await session.execute(stmt)).all()]

    async def deliver(self) -> int:
        """Flush the pipeline and send what is due, now (on the manual clock)."""
        await self.service.flush_once()
        return await self.service.sender.send_due()

    async def settle(self) -> None:
        """Deliver, then let the background loops (same manual clock) finish what they have."""
        for _ in range(3):
            await self.deliver()
            await asyncio.sleep(0.1)
