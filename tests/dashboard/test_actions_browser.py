"""Corrective actions in the dashboard (headless Chromium on the embedded stack): a person opens
a target's indicator page, records an action with the form, finds it in the list by owner, opens
it and marks it done; the history names them and the alert service has it. And on an alert row
(a firing alert written into the alert service's table, as the paging test does), then on the
alert's page."""

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
from tests.dashboard.harness import (
    STAFF_NAME,
    Stack,
    browser,
    dashboard_stack,
    signed_in,
)
from tests.dashboard.test_browser import ARTIFACTS

__all__ = ["browser"]  # the fixture (tests/dashboard/harness.py)

CONFIG = SimConfig(seed=5, start=date(2026, 1, 1), days=3, clients=30, scenario=Scenario.baseline)

pytestmark = pytest.mark.slow


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with dashboard_stack(tmp_path, CONFIG) as running:
        yield running


async def test_record_an_action_on_a_target_and_mark_it_done(
    stack: Stack, browser: Browser
) -> None:
    targets = (await stack.get("objectives", "/v1/targets")).json()
    target = next(t for t in targets if t["segment"] == "all")
    code = target["indicator"]
    today = datetime.now(UTC).date()  # the service runs on the wall clock here
    due, review = (today + timedelta(days=30)).isoformat(), (today + timedelta(days=60)).isoformat()
    ARTIFACTS.mkdir(exist_ok=True)
    page = await signed_in(browser, stack.url, viewport={"width": 1280, "height": 900})

    # the target's page (where an alert's link leads) has the actions card and its form
    await page.goto(f"{stack.url}/#/indicator/{code}?segment=all")
    card = page.get_by_test_id("actions-card")
    await expect(card.get_by_text("No actions recorded for this target.")).to_be_visible()
    await card.get_by_text("Record an action").click()
    form = card.get_by_test_id("action-form")
    await form.get_by_label("What will be done").fill("Refresher training for officers")
    await form.get_by_label("Owner", exact=True).fill("Amina Njoroge")
    await form.get_by_label("Owner's e-mail (optional)").fill("amina@example.org")
    await form.get_by_label("Due").fill(due)
    await form.get_by_label("Review").fill(review)
    await form.get_by_role("button", name="Record action").click()
    row = card.get_by_test_id("actions").locator("tr[data-action]")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Refresher training for officers")
    await expect(row).to_contain_text("Open")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-actions-target.png"))

    # the list by owner and status, then the action's own page
    await page.get_by_role("link", name="Actions", exact=True).click()
    # the click returns before the page changes: until then "Owner" is the target page's form
    await expect(page.get_by_role("heading", name="Corrective actions")).to_be_visible()
    await page.get_by_label("Owner").fill("Amina Njoroge")
    await page.get_by_label("Status").select_option("open")
    await page.get_by_role("button", name="Show").click()
    await expect(page).to_have_url(f"{stack.url}/#/actions?owner=Amina+Njoroge&status=open")
    await page.get_by_role("link", name="Refresher training for officers").click()
    await expect(page.get_by_role("heading", name="Refresher training")).to_be_visible()
    await page.get_by_role("button", name="Mark done").click()
    await expect(page.get_by_test_id("action")).to_contain_text("Done")
    history = page.get_by_test_id("action-history").locator("tbody tr")
    await expect(history).to_have_count(2)
    await expect(history.nth(1)).to_contain_text(STAFF_NAME)  # the person signed in
    await expect(history.nth(1)).to_contain_text("status: open → done")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-action.png"))
    assert page.errors == []  # type: ignore[attr-defined]

    [stored] = (await stack.get("alerts", "/v1/actions", owner="Amina Njoroge")).json()
    assert stored["target_id"] == target["id"] and stored["status"] == "done"
    assert stored["due_date"] == due and stored["created_at"] is not None


def _firing(target: dict[str, Any]) -> dict[str, Any]:
    """A firing breach of ``target`` as the alert service stores one."""
    now = datetime.now(UTC)
    return {
        "id": str(uuid.uuid4()), "fingerprint": uuid.uuid4().hex[:16], "target_id": target["id"],
        "objective_id": target["objective_id"], "objective_code": "O1",
        "indicator": target["indicator"], "segment": "all", "kind": "breach", "state": "firing",
        "severity": "warning", "value": "0.01", "threshold": "0.02", "since": now.date(),
        "as_of": now.date(), "fired_on": now.date(), "detail": {"direction": "at_least"},
        "created_at": now, "updated_at": now, "fired_at": now,
    }  # fmt: skip


async def test_record_an_action_on_an_alert_row(stack: Stack, browser: Browser) -> None:
    targets = (await stack.get("objectives", "/v1/targets")).json()
    target = next(t for t in targets if t["segment"] == "all")
    alert = _firing(target)
    service: AlertService = stack.dev.services["alerts"].state.alerts
    async with service.write() as session:
        await session.execute(insert(m.alerts), [alert])
    due = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    page = await signed_in(browser, stack.url, viewport={"width": 1280, "height": 900})
    await page.goto(stack.url + "/#/alerts")
    row = page.locator(f"tr[data-alert='{alert['id']}']")
    await row.get_by_role("button", name="Record action…").click()
    form = row.get_by_test_id("action-form")
    await form.get_by_label("What will be done").fill("Call every late borrower")
    await form.get_by_label("Owner", exact=True).fill("Juma Otieno")
    await form.get_by_label("Due").fill(due)
    await form.get_by_label("Review").fill(due)
    await form.get_by_role("button", name="Record action").click()
    await expect(page.get_by_text("Action recorded: Call every late borrower.")).to_be_visible()

    # the alert's page (its indicator and segment) lists it
    await page.goto(f"{stack.url}/#/indicator/{target['indicator']}?segment=all")
    listed = page.get_by_test_id("actions-card").locator("tr[data-action]")
    await expect(listed).to_contain_text("Call every late borrower")
    assert page.errors == []  # type: ignore[attr-defined]
    [stored] = (await stack.get("alerts", "/v1/actions", alert_id=alert["id"])).json()
    assert stored["target_id"] == target["id"] and stored["owner"] == "Juma Otieno"
