"""The notification pipeline up to the outbox: route → group → silence/inhibit → dedup against
the notification log → notification rows (one per channel) in the same transaction as the log.

Alertmanager's timers, on the injectable clock: a new group waits ``group_wait``; a changed
group (new alert, escalation, resolution) is notified at most every ``group_interval``; an
unchanged one is reminded every ``repeat_interval`` while it has an unacknowledged firing alert.
An acknowledgement covers the severity it was given at: an escalation is notified again.
A firing breach inhibits the warning and trend alerts of the same target and segment.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import models as m
from services.alerts import silences
from services.alerts.clock import Clock
from services.alerts.config import AlertSettings, Routing
from services.alerts.directory import Directory, StaticDirectory
from services.alerts.notify import render
from services.alerts.routing import labels, receiver, receivers_for
from services.alerts.rules import SEVERITY_RANK

LOCK_KEY = "spm-alerts-flush"


@dataclass
class Group:
    key: str
    receiver: str
    labels: dict[str, str]
    visible: dict[str, dict[str, Any]] = field(default_factory=dict)
    hidden: dict[str, dict[str, Any]] = field(default_factory=dict)


def _acked(row: Mapping[str, Any]) -> bool:
    return row["acked_at"] is not None and SEVERITY_RANK.get(
        row["ack_severity"] or "", -1
    ) >= SEVERITY_RANK.get(row["severity"], 0)


def _duration(seconds: float) -> str:
    """``3600`` → ``1 hour``; ``5400`` → ``90 minutes``: how long nobody acknowledged."""
    for size, unit in ((86_400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{int(seconds // 60)} minutes" if seconds >= 60 else f"{int(seconds)} seconds"


def _entry(row: Mapping[str, Any]) -> dict[str, str]:
    return {"id": row["id"], "state": row["state"], "severity": row["severity"]}


class Pipeline:
    def __init__(self, settings: AlertSettings, routing: Routing, clock: Clock) -> None:
        self.settings = settings
        self.routing = routing
        self.directory: Directory = StaticDirectory(routing.directory)
        """Who holds a role for a branch (role receivers); replaceable, e.g. by user accounts."""
        self.clock = clock
        self.group_by = list(settings.alerts_group_by)
        self.templates = render.Templates(
            settings.alerts_templates_dir, settings.institution_currency
        )

    async def flush(self, session: AsyncSession) -> int:
        """Decide every group once; returns the notification rows written."""
        if not await self.lock(session):
            return 0
        now = self.clock.now()
        groups = await self._groups(session, now)
        logs = {
            r.group_key: dict(r._mapping)
            for r in (await session.execute(select(m.notification_groups))).all()
        }
        written = 0
        for key in sorted(set(groups) | set(logs)):
            group = groups.get(key)
            log = logs.get(key)
            if group is None and log is not None:
                group = Group(key, log["receiver"], log["labels"])
            if group is not None:
                written += await self._decide(session, group, log, now)
        return written + await self._escalate(session, groups, now)

    async def _escalate(
        self, session: AsyncSession, groups: Mapping[str, Group], now: datetime
    ) -> int:
        """Send each visible, firing, unacknowledged alert to the next levels of its receiver's
        chain once their ``after_s`` has passed since it fired. Which levels were sent is read
        from the notification log (reason ``escalated``), so it survives restarts and shows in
        ``/v1/notifications?alert_id=``."""
        c = m.notifications.c
        done = {
            (r.receiver, alert_id)
            for r in await session.execute(
                select(c.receiver, c.alert_ids).where(c.reason == "escalated")
            )
            for alert_id in r.alert_ids
        }
        written = 0
        for group in groups.values():
            start = receiver(self.routing, group.receiver, self.directory)
            if start is None or not start.escalate:
                continue
            for fp, row in sorted(group.visible.items()):
                if _acked(row):
                    continue
                fired = row["fired_at"] or row["created_at"]
                previous = group.receiver
                for step in start.escalate:
                    if now < fired + timedelta(seconds=step.after_s):
                        break
                    if (step.receiver, row["id"]) not in done:
                        level = Group(f"{step.receiver}|escalated|{fp}", step.receiver,
                                      group.labels, visible={fp: row})  # fmt: skip
                        context = {"previous": previous, "after": _duration(step.after_s)}
                        written += await self._enqueue(
                            session, level, "escalated", [], now, escalation=context
                        )
                        done.add((step.receiver, row["id"]))
                    previous = step.receiver
        return written

    async def lock(self, session: AsyncSession) -> bool:
        """One flusher at a time across instances (transaction-scoped advisory lock)."""
        if session.get_bind().dialect.name != "postgresql":
            return True
        got = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"),
            {"k": f"{LOCK_KEY}:{self.settings.alerts_db_schema}"},
        )
        return bool(got)

    async def _groups(self, session: AsyncSession, now: datetime) -> dict[str, Group]:
        rows = [
            dict(r._mapping)
            for r in (
                await session.execute(select(m.alerts).where(m.alerts.c.state == "firing"))
            ).all()
        ]
        active_silences = await silences.active(session, now)
        breaching = {(r["target_id"], r["segment"]) for r in rows if r["kind"] == "breach"}
        groups: dict[str, Group] = {}
        for row in rows:
            lab = labels(row)
            hidden = silences.silenced(active_silences, lab) or (
                row["kind"] in ("warning", "trend")
                and (row["target_id"], row["segment"]) in breaching
            )
            for name in receivers_for(self.routing, row):
                group_labels: dict[str, str] = {k: lab[k] for k in self.group_by}
                key = self._key(name, group_labels)
                group = groups.setdefault(key, Group(key, name, group_labels))
                (group.hidden if hidden else group.visible)[row["fingerprint"]] = row
        self._silences = active_silences
        return groups

    @staticmethod
    def _key(name: str, group_labels: Mapping[str, str]) -> str:
        raw = name + "|" + "|".join(f"{k}={v}" for k, v in sorted(group_labels.items()))
        return (
            raw if len(raw) <= 300 else name[:200] + "|" + hashlib.sha256(raw.encode()).hexdigest()
        )

    async def _decide(
        self, session: AsyncSession, group: Group, log: dict[str, Any] | None, now: datetime
    ) -> int:
        notified: dict[str, dict[str, str]] = dict(log["notified"]) if log else {}
        resolved = await self._resolved(session, group, notified)
        changed = any(
            fp not in notified
            or notified[fp]["id"] != row["id"]
            or SEVERITY_RANK[row["severity"]] > SEVERITY_RANK.get(notified[fp]["severity"], 0)
            for fp, row in group.visible.items()
        )
        kept = {fp: notified[fp] for fp, row in group.hidden.items() if fp in notified}
        if not group.visible and not resolved:
            if log is not None:
                await self._save(session, group, log, kept, now, sent=False)
            return 0
        if log is None:
            log = await self._create(session, group, now)
        last = log["last_sent_at"]
        if changed or resolved:
            due = (
                last + timedelta(seconds=self.settings.alerts_group_interval_s)
                if last is not None
                else log["first_seen_at"] + timedelta(seconds=self.settings.alerts_group_wait_s)
            )
            reason = "firing" if changed else "resolved"
        else:
            unacked = any(not _acked(row) for row in group.visible.values())
            due = (
                last + timedelta(seconds=self.settings.alerts_repeat_interval_s)
                if last is not None and unacked
                else None
            )
            reason = "repeat"
        if due is None or now < due:
            return 0
        written = await self._enqueue(session, group, reason, list(resolved.values()), now)
        new_log = {fp: _entry(row) for fp, row in group.visible.items()} | kept
        await self._save(session, group, log, new_log, now, sent=True)
        return written

    async def _resolved(
        self, session: AsyncSession, group: Group, notified: Mapping[str, Mapping[str, str]]
    ) -> dict[str, dict[str, Any]]:
        """Alerts in the last notification that have since resolved (and are not silenced)."""
        gone = [
            entry["id"]
            for fp, entry in notified.items()
            if fp not in group.visible and fp not in group.hidden
        ]
        if not gone:
            return {}
        rows = await session.execute(select(m.alerts).where(m.alerts.c.id.in_(gone)))
        out: dict[str, dict[str, Any]] = {}
        for r in rows.all():
            row = dict(r._mapping)
            if row["state"] == "resolved" and not silences.silenced(self._silences, labels(row)):
                out[row["fingerprint"]] = row
        return out

    async def _create(self, session: AsyncSession, group: Group, now: datetime) -> dict[str, Any]:
        row: dict[str, Any] = {
            "group_key": group.key,
            "receiver": group.receiver,
            "labels": group.labels,
            "first_seen_at": now,
            "last_sent_at": None,
            "notified": {},
            "updated_at": now,
        }
        await session.execute(m.notification_groups.insert().values(**row))
        return row

    async def _save(
        self,
        session: AsyncSession,
        group: Group,
        log: Mapping[str, Any],
        notified: dict[str, dict[str, str]],
        now: datetime,
        *,
        sent: bool,
    ) -> None:
        c = m.notification_groups.c
        if not notified:
            # Everything resolved and told: the group ends; a new alert starts a new one.
            await session.execute(delete(m.notification_groups).where(c.group_key == group.key))
            return
        if not sent and notified == log["notified"]:
            return
        values: dict[str, Any] = {"notified": notified, "updated_at": now}
        if sent:
            values["last_sent_at"] = now
        await session.execute(
            m.notification_groups.update().where(c.group_key == group.key).values(**values)
        )

    async def _enqueue(
        self,
        session: AsyncSession,
        group: Group,
        reason: str,
        resolved: list[dict[str, Any]],
        now: datetime,
        escalation: Mapping[str, Any] | None = None,
    ) -> int:
        """One outbox row per channel; the row id is the idempotency key."""
        target = receiver(self.routing, group.receiver, self.directory)
        if target is None:
            return 0
        firing = sorted(group.visible.values(), key=lambda r: r["fingerprint"])
        for row in firing + resolved:
            row["detail"] = {
                **row["detail"],
                "business_days": row["detail"].get("business_days", 0),
            }
        batch = uuid.uuid4().hex
        ids = {r["target_id"] for r in firing + resolved}
        targets = {
            r.target_id: r.data
            for r in await session.execute(
                select(m.targets.c.target_id, m.targets.c.data).where(
                    m.targets.c.target_id.in_(ids)
                )
            )
        }
        generic, texts = render.build(
            key=batch, receiver=group.receiver, reason=reason, group=group.labels,
            firing=firing, resolved=resolved, dashboard=self.settings.alerts_dashboard_url,
            templates=self.templates, targets=targets, escalation=escalation,
        )  # fmt: skip
        subject, body_text, body_html = texts.subject, texts.text, texts.html
        alert_ids = [r["id"] for r in firing + resolved]
        rows: list[dict[str, Any]] = []
        if target.email:
            rows.append(
                {"channel": "email", "destination": ",".join(target.email), "format": "email",
                 "payload": generic}
            )  # fmt: skip
        for hook in target.webhooks:
            keyed = {**generic, "idempotency_key": f"{batch}.{len(rows)}"}
            body = render.webhook_payload(hook.format, keyed, subject, texts.webhook_text)
            rows.append(
                {"channel": "webhook", "destination": hook.url, "format": hook.format,
                 "payload": body}
            )  # fmt: skip
        for phone in target.sms:  # one row per number: each is sent, retried and counted alone
            rows.append(
                {"channel": "sms", "destination": phone, "format": "sms",
                 "payload": {"message": texts.sms, "idempotency_key": f"{batch}.{len(rows)}"}}
            )  # fmt: skip
        for n, row in enumerate(rows):
            await session.execute(
                m.notifications.insert().values(
                    id=f"{batch}.{n}", group_key=group.key, receiver=group.receiver,
                    reason=reason, subject=subject, body_text=body_text, body_html=body_html,
                    alert_ids=alert_ids, status="pending", attempts=0, next_attempt_at=now,
                    last_error=None, created_at=now, sent_at=None, **row,
                )
            )  # fmt: skip
        return len(rows)
