"""Cursor paging of the alert service's lists: no row lost or repeated, filters before the limit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, update

from services.alerts import models as m
from services.common.bus import MemoryBus
from services.common.paging import NEXT_CURSOR_HEADER
from tests.alerts.harness import Harness, settings_for
from tests.alerts.servers import SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
async def h(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
    smtp: SmtpServer,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    """The service on PostgreSQL (distributed) and on SQLite (embedded): the SQL differs."""
    routes = {"receivers": {"ops": {"email": ["ops@example.org"]}}}
    if request.param == "sqlite":
        settings = settings_for(
            "", f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}", unique, smtp_port=smtp.port,
            routes=routes, kafka_bootstrap_servers=None,
        )  # fmt: skip
        harness = await Harness.start(settings, MemoryBus())
    else:
        settings = settings_for(
            kafka_bootstrap, postgres_url, unique, smtp_port=smtp.port, routes=routes
        )
        harness = await Harness.start(settings)
    yield harness
    await harness.stop()


def _alert(at: datetime, state: str = "firing") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "fingerprint": uuid.uuid4().hex, "target_id": "t1",
        "objective_id": "o1", "objective_code": "O1", "indicator": "women_borrower_share",
        "segment": "all", "kind": "breach", "state": state, "severity": "warning",
        "value": "0.5", "threshold": "0.6", "since": date(2025, 6, 1), "as_of": date(2025, 6, 1),
        "detail": {}, "created_at": at, "updated_at": at,
    }  # fmt: skip


def _notification(at: datetime, alert_ids: list[str]) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex, "group_key": "g", "receiver": "ops", "channel": "email",
        "destination": "ops@example.org", "format": "text", "reason": "firing", "subject": "s",
        "body_text": "b", "body_html": "<p>b</p>", "payload": {}, "alert_ids": alert_ids,
        "status": "sent", "attempts": 1, "next_attempt_at": at, "created_at": at, "sent_at": at,
    }  # fmt: skip


async def _insert(h: Harness, table: Any, rows: list[dict[str, Any]]) -> None:
    async with h.service.write() as session:
        await session.execute(insert(table), rows)


async def _page(h: Harness, path: str, **params: Any) -> tuple[list[dict[str, Any]], str | None]:
    r = await h.client.get(path, params=params, headers=h.auth())
    assert r.status_code == 200, r.text
    return r.json(), r.headers.get(NEXT_CURSOR_HEADER)


async def test_walk_alerts_while_rows_arrive_and_change(h: Harness) -> None:
    # Two rows share a created_at: the id breaks the tie, so a page boundary between them is safe.
    old = [_alert(T0 + timedelta(minutes=i // 2)) for i in range(23)]
    await _insert(h, m.alerts, old)
    seen: list[str] = []
    rows, cursor = await _page(h, "/v1/alerts", limit=5)
    seen += [r["id"] for r in rows]
    pages = 1
    backfilled = _alert(T0 - timedelta(days=1))  # older than every row: belongs on a later page
    while cursor is not None:
        # Between fetches: newer alerts open, an alert already seen changes, one older arrives.
        await _insert(h, m.alerts, [_alert(T0 + timedelta(days=pages))])
        async with h.service.write() as session:
            await session.execute(
                update(m.alerts).where(m.alerts.c.id == seen[0])
                .values(updated_at=T0 + timedelta(days=30), severity="critical")
            )  # fmt: skip
        if pages == 2:
            await _insert(h, m.alerts, [backfilled])
        rows, cursor = await _page(h, "/v1/alerts", limit=5, cursor=cursor)
        assert len(rows) <= 5
        seen += [r["id"] for r in rows]
        pages += 1
    expected = sorted(old, key=lambda a: (a["created_at"], a["id"]), reverse=True)
    assert seen == [a["id"] for a in expected] + [backfilled["id"]]
    assert pages == 5  # 24 rows in pages of 5


async def test_alert_filter_applies_before_the_limit(h: Harness) -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    own = [_notification(T0 + timedelta(minutes=i), [mine, other]) for i in range(3)]
    newer = [_notification(T0 + timedelta(hours=1, seconds=i), [other]) for i in range(250)]
    await _insert(h, m.notifications, own + newer)
    rows, cursor = await _page(h, "/v1/notifications", alert_id=mine)
    assert [r["id"] for r in rows] == [n["id"] for n in reversed(own)] and cursor is None
    walked: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"alert_id": other, "limit": 100}
        rows, cursor = await _page(h, "/v1/notifications", **params, **(
            {"cursor": cursor} if cursor else {}))  # fmt: skip
        walked += [r["id"] for r in rows]
        if cursor is None:
            break
    assert len(walked) == len(set(walked)) == 253


async def test_walk_silences(h: Harness) -> None:
    now = h.clock.now()
    rows_in: list[dict[str, Any]] = [
        {"id": str(uuid.uuid4()), "matchers": [{"name": "segment", "value": "all", "op": "="}],
         "created_by": "ops", "comment": f"c{i}", "starts_at": now, "created_at": now,
         "ends_at": now + timedelta(days=1)}
        for i in range(7)
    ]  # fmt: skip
    await _insert(h, m.silences, rows_in)
    seen: list[str] = []
    rows, cursor = await _page(h, "/v1/silences", limit=3)
    seen += [r["id"] for r in rows]
    while cursor is not None:
        rows, cursor = await _page(h, "/v1/silences", limit=3, cursor=cursor)
        seen += [r["id"] for r in rows]
    assert seen == sorted((s["id"] for s in rows_in), reverse=True)


async def test_malformed_cursor_is_422(h: Harness) -> None:
    bad = [
        "!!!",
        "bm90IGpzb24",
        "WyJ4IiwieSJd",
        "WzEsMl0",
        "WyIyMDI1LTA2LTAxVDA4OjAwIiwieCJd",
        "WzEsIngiXQ",
    ]
    for path in ["/v1/alerts", "/v1/notifications", "/v1/silences"]:
        for cursor in [
            *bad,
            "x" * 600,
        ]:  # not base64/JSON, bad date, numbers, naive, a version, long
            r = await h.client.get(path, params={"cursor": cursor}, headers=h.auth())
            assert r.status_code == 422, (path, cursor, r.text)
            assert [e["field"] for e in r.json()["errors"]] == ["query.cursor"]
