"""The alerts page walks past its first page: "More alerts" brings older alerts, none twice.

A short simulation (the page needs a running stack, not drift) plus resolved alerts written
straight into the alert service's table, more than one page of them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import insert

from services.alerts import models as m
from services.alerts.service import AlertService
from spm.simulator import Scenario, SimConfig
from tests.dashboard.harness import Stack, browser, dashboard_stack, signed_in

__all__ = ["browser"]  # the fixture (tests/dashboard/harness.py)

CONFIG = SimConfig(seed=5, start=date(2026, 1, 1), days=3, clients=30, scenario=Scenario.baseline)
RESOLVED = 75  # one and a half pages of 50

pytestmark = pytest.mark.slow


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with dashboard_stack(tmp_path, CONFIG) as running:
        yield running


def _resolved(i: int) -> dict[str, Any]:
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    return {
        "id": f"00000000-0000-4000-8000-{i:012d}", "fingerprint": uuid.uuid4().hex,
        "target_id": "t1", "objective_id": "o1", "objective_code": "O1",
        "indicator": "women_borrower_share", "segment": f"branch:BR-{i:03d}", "kind": "breach",
        "state": "resolved", "severity": "warning", "value": "0.5", "threshold": "0.6",
        "since": date(2025, 1, 1), "as_of": date(2025, 1, 2), "resolved_on": date(2025, 1, 2),
        "detail": {}, "created_at": at, "updated_at": at, "resolved_at": at,
    }  # fmt: skip


def _notification(i: int) -> dict[str, Any]:
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    return {
        "id": f"old-note-{i:03d}", "group_key": "g", "receiver": "ops", "channel": "email",
        "destination": "ops@example.org", "format": "text", "reason": "firing",
        "subject": f"old note {i}", "body_text": "b", "body_html": "<p>b</p>", "payload": {},
        "alert_ids": [], "status": "sent", "attempts": 1, "next_attempt_at": at,
        "created_at": at, "sent_at": at,
    }  # fmt: skip


async def test_more_alerts_shows_older_ones(stack: Stack, browser: Browser) -> None:
    service: AlertService = stack.dev.services["alerts"].state.alerts
    async with service.write() as session:
        await session.execute(insert(m.alerts), [_resolved(i) for i in range(RESOLVED)])
        await session.execute(insert(m.notifications), [_notification(i) for i in range(RESOLVED)])
    oldest = _resolved(0)["id"]
    listed = await stack.get("alerts", "/v1/alerts", state="resolved", limit=1000)
    total = len(listed.json())  # ours and any the short simulation resolved
    assert RESOLVED <= total <= 100, total  # two pages of 50
    page = await signed_in(browser, stack.url)
    await page.get_by_role("link", name="Alerts").click()
    await expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    await page.get_by_role("link", name="Show recently resolved").click()
    await expect(page.get_by_role("link", name="Hide resolved")).to_be_visible()
    resolved = page.locator('table[data-testid="alerts"] tr[data-state="resolved"]')
    await expect(resolved).to_have_count(50)
    await expect(page.locator(f'tr[data-alert="{oldest}"]')).to_have_count(0)
    await page.get_by_test_id("more-alerts").click()
    await expect(resolved).to_have_count(total)
    await expect(page.locator(f'tr[data-alert="{oldest}"]')).to_have_count(1)
    await expect(page.get_by_test_id("more-alerts")).to_have_count(0)  # the last page
    shown = await resolved.evaluate_all("rows => rows.map((r) => r.dataset.alert)")
    assert len(set(shown)) == total
    notes = page.locator('table[data-testid="notifications"] tbody tr')
    await expect(notes).to_have_count(50)
    await page.get_by_test_id("more-notifications").click()
    await expect(page.get_by_text("old note 0", exact=True)).to_have_count(1)
    await expect(page.get_by_test_id("more-notifications")).to_have_count(0)
    assert page.errors == []  # type: ignore[attr-defined]
