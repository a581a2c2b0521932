"""The dashboard in headless Chromium (Playwright driving the Debian ``chromium`` package) against
the real indicator, objectives and alert apps fed by the simulator. Screenshots go to
``test-artifacts/``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Route, expect

from spm.simulator import Scenario, SimConfig
from tests.dashboard.harness import (
    STAFF_NAME,
    STAFF_PASSWORD,
    STAFF_USER,
    Stack,
    browser,
    dashboard_stack,
    new_page,
    session_client,
    sign_in,
    signed_in,
)

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
CONFIG = SimConfig(seed=5, start=date(2026, 1, 1), days=150, clients=500, scenario=Scenario.drift)

__all__ = ["browser"]  # the fixture

pytestmark = pytest.mark.slow


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with dashboard_stack(tmp_path, CONFIG) as running:
        yield running


async def test_sign_in_overview_and_indicator_page(stack: Stack, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = await new_page(browser, viewport={"width": 1280, "height": 900})

    # nothing is visible without signing in, and a wrong password is refused
    await page.goto(stack.url + "/#/overview")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.locator("table")).to_have_count(0)
    await sign_in(page, stack.url, STAFF_USER, "not the password")
    await expect(page.get_by_text("Wrong username or password.")).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "dashboard-signin.png"))

    # overview: every target of the sample strategy with its current value, status and trend
    await sign_in(page, stack.url, STAFF_USER, STAFF_PASSWORD)
    await expect(page.get_by_role("heading", name="Social targets")).to_be_visible()
    await expect(page.get_by_test_id("who-name")).to_have_text(STAFF_NAME)
    await expect(page.get_by_test_id("who-scope")).to_have_text("SPM officer · all branches")
    await expect(page.get_by_role("heading", name="Prevent over-indebtedness")).to_be_visible()
    rows = page.locator("tr[data-target]")
    assert await rows.count() == 9
    par30 = page.locator(
        "tr[data-target]", has=page.get_by_role("link", name="Portfolio at risk > 30 days")
    )
    current = await par30.locator("td").nth(2).inner_text()
    assert current.endswith("%") and current != "–", current
    assert await par30.locator("svg.spark polyline").count() == 1
    statuses = await rows.evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert set(statuses) <= {"ok", "warning", "breached", "nodata"}
    assert "nodata" not in set(statuses)
    # status is told in words and icons, not colour alone
    await expect(par30.locator(".badge").first).to_contain_text(
        ("On target", "Warning", "Off target")[
            ["ok", "warning", "breached"].index(await par30.get_attribute("data-status") or "ok")
        ]
    )
    await page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)

    # indicator page: chart with target and warning lines, breakdown by branch, formula
    await par30.get_by_role("link", name="Portfolio at risk > 30 days").click()
    await expect(page.get_by_role("heading", name="Portfolio at risk > 30 days")).to_be_visible()
    chart = page.locator("figure svg.chart").first
    await expect(chart.locator("polyline.series")).to_have_count(1)
    await expect(chart.locator("line.target-line")).to_have_count(1)
    await expect(chart.locator("line.warning-line")).to_have_count(1)
    await expect(page.get_by_test_id("formula")).to_contain_text("÷")
    branches = page.get_by_test_id("breakdown").locator("tbody tr")
    assert await branches.count() == CONFIG.branches
    await expect(page.get_by_test_id("breakdown")).to_contain_text(CONFIG.drift_branch_id)
    api_value = (
        await stack.get("indicators", "/v1/indicators", code="par30", segment="all")
    ).json()
    shown = await page.get_by_test_id("current-value").inner_text()
    assert shown == f"{api_value['items'][0]['value'] * 100:.1f} %"
    await page.screenshot(path=str(ARTIFACTS / "dashboard-indicator.png"), full_page=True)

    # the drifting branch's DSTI breaches, by segment
    await page.goto(
        stack.url + f"/#/indicator/dsti_breach_share?segment=branch:{CONFIG.drift_branch_id}"
    )
    await expect(
        page.get_by_role("heading", name="Debt-service-to-income breaches")
    ).to_be_visible()
    await expect(page.get_by_test_id("current-value")).not_to_have_text("0.0 %")

    # alerts: firing ones listed; acknowledge one and see its state change; silence another
    await page.get_by_role("link", name="Alerts").click()
    await expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    firing = page.locator('tr[data-state="firing"]')
    await expect(firing.first).to_be_visible(timeout=30_000)
    alert_id = await firing.first.get_attribute("data-alert")
    row = page.locator(f'tr[data-alert="{alert_id}"]')
    await expect(row).to_contain_text("Firing")
    await row.get_by_role("button", name="Acknowledge").click()
    await expect(page.get_by_text("Acknowledged:")).to_be_visible()
    await expect(row.locator('td[data-label="Acknowledged"]')).to_contain_text(f"✓ by {STAFF_NAME}")
    await expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    acked = (await stack.get("alerts", f"/v1/alerts/{alert_id}")).json()
    assert acked["acked_by"] == STAFF_NAME and acked["state"] == "firing"
    await page.screenshot(path=str(ARTIFACTS / "dashboard-alerts-acked.png"), full_page=True)

    other = page.locator("tr[data-alert]", has=page.get_by_role("button", name="Silence…"))
    silenced_id = await other.nth(1).get_attribute("data-alert")
    target_row = page.locator(f'tr[data-alert="{silenced_id}"]')
    await target_row.get_by_role("button", name="Silence…").click()
    await target_row.get_by_label("Comment").fill("Known backlog, plan agreed with branch")
    until = target_row.get_by_label("Silence until")
    chosen = await until.input_value()
    await until.fill("2020-01-01T09:00")  # refused by the server: the page says why
    await target_row.get_by_role("button", name="Create silence").click()
    await expect(page.locator("#status")).to_contain_text("ends_at: must be in the future")
    await until.fill(chosen)
    await target_row.get_by_role("button", name="Create silence").click()
    await expect(page.get_by_text("Silence created until")).to_be_visible()
    await expect(target_row.locator('td[data-label="State"]')).to_contain_text("Silenced")
    silences = (await stack.get("alerts", "/v1/silences")).json()
    fingerprint = (await stack.get("alerts", f"/v1/alerts/{silenced_id}")).json()["fingerprint"]
    assert [m["value"] for s in silences for m in s["matchers"]] == [fingerprint]
    assert silences[0]["created_by"] == STAFF_NAME
    await expect(page.get_by_role("heading", name="Notification history")).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "dashboard-alerts.png"), full_page=True)

    assert page.errors == []  # type: ignore[attr-defined]
    await page.context.close()


async def _settled(stack: Stack, alert_id: str, within_s: float = 60.0) -> dict[str, Any]:
    """The alert once the last day's values reached it. The stack is caught up when the indicator
    API answers for the last day, but the values stream on to the alert service after that, and
    a firing alert takes each one (its value and date moved while the page was being opened)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        alert = (await stack.get("alerts", f"/v1/alerts/{alert_id}")).json()
        if alert["state"] not in ("pending", "firing") or alert["as_of"] == CONFIG.end.isoformat():
            return dict(alert)
        assert loop.time() < deadline, alert
        await asyncio.sleep(0.2)


async def test_the_link_in_an_alert_email_opens_its_page(stack: Stack, browser: Browser) -> None:
    """The e-mail the embedded SMTP sink received links to the alert's own page, which shows
    that alert (its segment, its value) and the notification that carried the link."""
    mailbox = stack.dev.mailbox
    assert mailbox is not None
    for _ in range(600):
        if any("Open it in the dashboard: " in m["text"] for m in mailbox.messages):
            break
        await asyncio.sleep(0.1)
    mail = next(m for m in mailbox.messages if "Open it in the dashboard: " in m["text"])
    found = re.search(r"Open it in the dashboard: (\S+)", mail["text"])
    assert found is not None and found[1].startswith(stack.url + "/#/alert/"), mail["text"]
    alert_id = found[1].removeprefix(stack.url + "/#/alert/")
    shown = await _settled(stack, alert_id)
    page = await signed_in(browser, stack.url, viewport={"width": 1280, "height": 900})
    await page.goto(found[1])
    card = page.get_by_test_id("alert")
    await expect(card).to_have_attribute("data-alert", alert_id)
    words = "the whole institution" if shown["segment"] == "all" else shown["segment"].split(":")[1]
    await expect(page.get_by_test_id("alert-segment")).to_contain_text(words)
    await expect(page.get_by_test_id("alert-value")).to_contain_text(f"(on {shown['as_of']})")
    await expect(page.get_by_test_id("alert-notifications")).to_contain_text(mail["subject"])
    await expect(page.get_by_text("This page could not be loaded.")).to_have_count(0)
    assert page.url == found[1]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-alert.png"), full_page=True)

    # acknowledged from its page, under the person's name (the alerts list's rules)
    acknowledge = page.get_by_role("button", name="Acknowledge")
    if shown["state"] == "resolved":
        await expect(acknowledge).to_have_count(0)
    else:
        await acknowledge.click()
        await expect(page.get_by_test_id("alert-acked")).to_contain_text(f"✓ by {STAFF_NAME}")
        await expect(acknowledge).to_have_count(0)
        acked = (await stack.get("alerts", f"/v1/alerts/{alert_id}")).json()
        assert acked["acked_by"] == STAFF_NAME

    # the alerts list links to the same page
    await page.goto(stack.url + "/#/alerts")
    await page.locator(f'tr[data-alert="{alert_id}"] td[data-label="State"] a').click()
    await expect(card).to_have_attribute("data-alert", alert_id)
    assert page.url == found[1]
    assert page.errors == []  # type: ignore[attr-defined]
    await page.context.close()


async def test_a_session_ended_while_the_page_loads_asks_to_sign_in_again(
    stack: Stack, browser: Browser
) -> None:
    """The navigation asks for the demo mailbox after the overview is shown, where no page
    catches a refusal: the session ended in between sends the person to sign in (it was an
    uncaught rejection, and the page stayed as if signed in)."""
    page = await new_page(browser)
    asked, answer = asyncio.Event(), asyncio.Event()

    async def hold(route: Route) -> None:
        asked.set()
        await answer.wait()
        await route.continue_()

    await page.route("**/v1/demo/mail*", hold)
    await sign_in(page, stack.url, STAFF_USER, STAFF_PASSWORD)
    await asyncio.wait_for(asked.wait(), timeout=30)
    await expect(page.get_by_role("heading", name="Social targets")).to_be_visible(timeout=30_000)
    async with session_client(page, stack.dev.base_url) as person:
        assert (await person.post("/auth/logout")).status_code == 204
    answer.set()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_text("Your session has ended. Sign in again.")).to_be_visible()
    assert page.errors == []  # type: ignore[attr-defined]
    await page.context.close()


async def test_phone_layout(stack: Stack, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = await signed_in(browser, stack.url, viewport={"width": 390, "height": 844},
                           is_mobile=True, has_touch=True, device_scale_factor=2)  # fmt: skip
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    await page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]
    await page.context.close()
