"""The sender: delivers notification outbox rows, retrying with exponential backoff.

Each row is delivered in its own transaction that holds the row (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several instances never send the same row at once) and records the outcome. A
crash after delivering but before the commit leaves the row pending: it is delivered again after
the restart with the same idempotency key — at least once, never under two keys.

One notification never holds up the others: any error while building or delivering it (a
header the e-mail library refuses, a bug in a renderer) marks that row ``failed`` with the
reason and the sender goes on to the next row; the loop itself survives any error of a cycle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import models as m
from services.alerts.clock import Clock
from services.alerts.config import AlertSettings
from services.alerts.errors import DeliveryError
from services.alerts.notify.channels import Channels
from services.common.aio import wait_event
from services.common.db import Sessions
from services.common.errors import SpmError
from services.common.metrics import count_notification
from services.common.telemetry import joined

log = logging.getLogger(__name__)
tracer = trace.get_tracer("spm.alerts.notify")


class Sender:
    def __init__(
        self,
        settings: AlertSettings,
        sessions: Sessions,
        channels: Channels,
        clock: Clock,
        lock: asyncio.Lock | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.channels = channels
        self.clock = clock
        self.lock = lock or asyncio.Lock()
        """Held while sending: one sender at a time in this process (and the SQLite writer)."""
        self.wakeup = asyncio.Event()
        self.delivered = 0

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: base × 2^(attempts − 1), capped."""
        s = self.settings
        return float(
            min(s.alerts_send_backoff_s * 2 ** max(attempts - 1, 0), s.alerts_send_backoff_max_s)
        )

    async def run(self) -> None:
        while True:
            try:
                sent = await self.send_due()
            except SpmError as exc:
                log.warning("alerts: sender cycle failed (%s)", exc)
                sent = 0
            except Exception:  # a bug must not stop every later notification
                log.exception("alerts: sender cycle failed unexpectedly")
                sent = 0
            if not sent:
                await wait_event(self.wakeup, self.settings.alerts_flush_interval_s)
                self.wakeup.clear()

    async def send_due(self, limit: int = 50) -> int:
        """Try every due row once; returns how many were attempted."""
        c = m.notifications.c
        now = self.clock.now()
        async with self.sessions.read() as session:
            ids = list(
                await session.scalars(
                    select(c.id)
                    .where(c.status == "pending", c.next_attempt_at <= now)
                    .order_by(c.created_at, c.id)
                    .limit(limit)
                )
            )
        for notification_id in ids:
            async with self.lock:
                await self._attempt(notification_id)
        return len(ids)

    async def _span(
        self, session: AsyncSession, row: dict[str, Any]
    ) -> AbstractContextManager[Span]:
        """The span of one delivery, in the trace of the evaluation that changed its first alert
        (the others linked): ingest request -> engine batch -> emission -> evaluation -> send."""
        c = m.alerts.c
        found = await session.execute(select(c.id, c.detail).where(c.id.in_(row["alert_ids"])))
        by_id: dict[str, Any] = dict(found.all())
        parent, links = joined(
            (by_id.get(alert_id) or {}).get("traceparent") for alert_id in row["alert_ids"]
        )
        return tracer.start_as_current_span(
            "alerts.notify.send",
            context=parent,
            links=links,
            kind=SpanKind.CLIENT,
            attributes={"spm.channel": row["channel"], "spm.reason": row["reason"]},
        )

    async def _attempt(self, notification_id: str) -> None:
        c = m.notifications.c
        async with self.sessions.write() as session:
            found = (
                await session.execute(
                    select(m.notifications)
                    .where(
                        c.id == notification_id,
                        c.status == "pending",
                        c.next_attempt_at <= self.clock.now(),
                    )
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if found is None:
                return  # sent or retried meanwhile, or another instance holds it
            row = dict(found._mapping)
            attempts = row["attempts"] + 1
            values: dict[str, Any] = {"attempts": attempts}
            try:
                with await self._span(session, row):
                    await self.channels.deliver(row)
            except DeliveryError as exc:
                give_up = not exc.retriable or attempts >= self.settings.alerts_send_max_attempts
                values["last_error"] = str(exc)[:1000]
                if give_up:
                    values["status"] = "failed"
                    log.error("alerts: notification %s failed for good (%s)", row["id"], exc)
                else:
                    values["next_attempt_at"] = self.clock.now() + timedelta(
                        seconds=self.backoff(attempts)
                    )
            except Exception as exc:  # not a delivery problem: retrying would fail the same way
                values["status"] = "failed"
                values["last_error"] = f"could not send: {type(exc).__name__}: {exc}"[:1000]
                log.error(
                    "alerts: notification %s failed for good (%s)", row["id"], type(exc).__name__
                )
            else:
                if self.settings.alerts_crash_after_send:
                    os.kill(os.getpid(), signal.SIGKILL)  # tests: die between send and record
                values.update(status="sent", sent_at=self.clock.now())
                self.delivered += 1
            count_notification(row["channel"], values)
            await session.execute(update(m.notifications).where(c.id == row["id"]).values(**values))
