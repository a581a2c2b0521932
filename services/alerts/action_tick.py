"""The corrective actions' tick, run with every flush of the notification pipeline (same
transaction, same injectable clock, so tests drive it by moving the clock):

1. an open action whose due date has passed becomes ``overdue`` (recorded, announced);
2. an overdue action's owner is told once, and the owner's manager once more after
   ``ALERTS_ACTION_MANAGER_AFTER_S`` (notification rows on the existing channels, sent and retried
   by the sender like alert notifications);
3. a done action whose review date has come is judged (``actions.judge_now``).

Dates are compared with the clock's date in UTC: an action due on the 30th is overdue from the
1st.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import actions, store
from services.alerts import models as m
from services.alerts.clock import Clock
from services.alerts.config import AlertSettings, Routing
from services.alerts.notify import render
from services.alerts.routing import EMAIL_PREFIX, receiver

OWNER_REASON = "action_overdue"
MANAGER_REASON = "action_manager"


class ActionTick:
    def __init__(
        self,
        settings: AlertSettings,
        routing: Routing,
        clock: Clock,
        templates: render.Templates,
        publisher: store.Publisher,
    ) -> None:
        self.settings = settings
        self.routing = routing
        self.clock = clock
        self.templates = templates
        self.publisher = publisher
        self.grace = timedelta(seconds=settings.alerts_action_manager_after_s)

    async def run(self, session: AsyncSession) -> int:
        """One pass; returns the notification rows written."""
        now = self.clock.now()
        today = now.date()
        c = m.actions.c
        for row in await actions.matching(session, c.status == "open", c.due_date < today):
            await actions.mark_overdue(session, self.publisher, row, now)
        written = 0
        for row in await actions.matching(session, c.status == "overdue"):
            if row["owner_notified_at"] is None:
                name = self.owner_receiver(row)
                written += await self._notify(session, row, name, "owner", now)
                await actions.noted(session, row, "owner_notified_at", name or "nobody", now)
            if row["manager_notified_at"] is None and now >= row["overdue_at"] + self.grace:
                name = self.manager_receiver(row)
                written += await self._notify(session, row, name, "manager", now)
                await actions.noted(session, row, "manager_notified_at", name or "nobody", now)
        due = (c.status == "done", c.effectiveness.is_(None), c.review_date <= today)
        for row in await actions.matching(session, *due):
            await actions.judge_now(session, self.publisher, row, now)
        return written

    def owner_receiver(self, row: dict[str, Any]) -> str | None:
        """The owner's notification address: an e-mail address or a receiver of the routing."""
        notify: str | None = row["owner_notify"]
        if not notify:
            return None
        if "@" in notify:
            return EMAIL_PREFIX + notify
        return notify if notify in self.routing.receivers else None

    def manager_receiver(self, row: dict[str, Any]) -> str | None:
        """The owner receiver's ``manager``, else ``ALERTS_ACTION_MANAGER``."""
        own = self.routing.receivers.get(row["owner_notify"] or "")
        if own is not None and own.manager:
            return own.manager
        return self.settings.alerts_action_manager

    async def _notify(
        self, session: AsyncSession, row: dict[str, Any], name: str | None, notice: str,
        now: datetime,
    ) -> int:  # fmt: skip
        target = receiver(self.routing, name) if name else None
        if name is None or target is None:
            return 0
        context = render.action_context(
            row, notice, name, self.settings.alerts_dashboard_url, now.date(),
            self.templates.currency,
        )  # fmt: skip
        texts = self.templates.render_action(context, context["a"]["dashboard_url"])
        batch = uuid.uuid4().hex
        reason = OWNER_REASON if notice == "owner" else MANAGER_REASON
        generic = {"version": "1", "idempotency_key": batch, "receiver": name, "status": "overdue",
                   "reason": reason, "summary": texts.subject, "action": context["a"]}  # fmt: skip
        rows: list[dict[str, Any]] = []
        if target.email:
            rows.append({"channel": "email", "destination": ",".join(target.email),
                         "format": "email", "payload": generic})  # fmt: skip
        for hook in target.webhooks:
            keyed = {**generic, "idempotency_key": f"{batch}.{len(rows)}"}
            body = render.webhook_payload(hook.format, keyed, texts.subject, texts.webhook_text)
            rows.append({"channel": "webhook", "destination": hook.url, "format": hook.format,
                         "payload": body})  # fmt: skip
        for phone in target.sms:
            rows.append({"channel": "sms", "destination": phone, "format": "sms",
                         "payload": {"message": texts.sms,
                                     "idempotency_key": f"{batch}.{len(rows)}"}})  # fmt: skip
        alert_ids = [row["alert_id"]] if row["alert_id"] else []
        for n, values in enumerate(rows):
            await session.execute(
                m.notifications.insert().values(
                    id=f"{batch}.{n}", group_key=f"action:{row['id']}:{notice}", receiver=name,
                    reason=reason, subject=texts.subject, body_text=texts.text,
                    body_html=texts.html, alert_ids=alert_ids, status="pending", attempts=0,
                    next_attempt_at=now, last_error=None, created_at=now, sent_at=None, **values,
                )
            )  # fmt: skip
        return len(rows)
