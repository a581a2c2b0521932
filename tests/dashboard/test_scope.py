"""The dashboard for a branch manager (a local account limited to BR-MSA; a key with the same
limit checks what the APIs answer them): their branch's and the institution's targets, nothing
of another branch, no buttons for what the server would refuse, and who last changed a target;
through her session the API refuses or filters the other branch's values, series, breakdown and
CSV rows, alerts and silences (the same checks as tests/accounts/test_oidc.py, where the branch
manager signs in through Keycloak)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from services.common.auth import hash_key
from spm.simulator import Scenario, SimConfig
from tests.dashboard.branch_scope import BRANCH_REACH, assert_branch_scope, target
from tests.dashboard.harness import Stack, browser, dashboard_stack, session_client, signed_in

__all__ = ["browser"]  # the fixture (tests/dashboard/harness.py)

MANAGER_KEY = "msa-manager-key-0123"
MANAGER_USER, MANAGER_PASSWORD = "said", "a branch manager's password 1"
MANAGER = {
    "name": "Amina Said",
    "subject": "local:amina",
    "sha256": hash_key(MANAGER_KEY),
    "scopes": ["indicators:read", "objectives:read", "alerts:read", "alerts:ack"],
    "branches": ["BR-MSA"],
}
CONFIG = SimConfig(seed=7, start=date(2026, 1, 1), days=120, clients=300, scenario=Scenario.drift)

pytestmark = pytest.mark.slow


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with dashboard_stack(tmp_path, CONFIG, extra_keys=[MANAGER]) as running:
        await running.dev.accounts.opened().add(
            MANAGER_USER, "Amina Said", "branch_manager", MANAGER_PASSWORD, ["BR-MSA"]
        )
        yield running


def _target(segment: str) -> dict[str, object]:
    return target("par30", segment, "at_most", "0.10")


async def test_a_branch_manager_sees_their_branch_only(stack: Stack, browser: Browser) -> None:
    created = await stack.client.post("/v1/objectives", json={
        "code": "branch-par", "name": "Branch portfolio quality", "description": "per branch",
        "dimension": "D4", "owner": "Operations",
        "targets": [_target("branch:BR-MSA"), _target("branch:BR-NAI")],
    })  # fmt: skip
    assert created.status_code == 201, created.text
    doc = created.json()
    ids = {t["segment"]: t["id"] for t in doc["targets"]}
    changed = await stack.client.patch(f"/v1/objectives/{doc['id']}", json={
        "version": 1, "reason": "tighter for the coast",
        "targets": [{**_target("branch:BR-MSA"), "threshold": "0.08", "id": ids["branch:BR-MSA"]},
                    {**_target("branch:BR-NAI"), "id": ids["branch:BR-NAI"]}],
    })  # fmt: skip
    assert changed.status_code == 200, changed.text

    page = await signed_in(
        browser, stack.url, MANAGER_USER, MANAGER_PASSWORD, viewport={"width": 1280, "height": 900}
    )
    await expect(page.locator("#who")).to_contain_text("Amina Said")
    await expect(page.locator("#who")).to_contain_text("BR-MSA")
    await expect(page.locator(f'tr[data-target="{ids["branch:BR-MSA"]}"]')).to_have_count(1)
    await expect(page.locator(f'tr[data-target="{ids["branch:BR-NAI"]}"]')).to_have_count(0)
    assert await page.locator("tr[data-target]").count() == 10  # 9 institution-level + MSA

    await page.goto(stack.url + "/#/indicator/par30?segment=branch:BR-MSA")
    await expect(page.get_by_test_id("target-changed")).to_contain_text(
        "updated by staff"
    )  # the audit trail's name
    await expect(page.get_by_test_id("target-changed")).to_contain_text("tighter for the coast")
    breakdown = page.get_by_test_id("breakdown").locator("tbody tr")
    await expect(breakdown).to_have_count(1)
    await expect(breakdown).to_contain_text("BR-MSA")
    options = await page.locator("#seg option").evaluate_all("o => o.map(x => x.value)")
    assert "branch:BR-NAI" not in options and "branch:BR-MSA" in options

    # alerts: the institution-level ones are listed, but acting on them is for the institution
    await page.get_by_role("link", name="Alerts").click()
    firing = page.locator('tr[data-state="firing"]')
    await expect(firing.first).to_be_visible(timeout=30_000)
    mine = [
        a for a in (await stack.client.get(
            "/v1/alerts", headers={"Authorization": f"Bearer {MANAGER_KEY}"})).json()
        if a["segment"] == "branch:BR-MSA" and not a["acked_at"]
    ]  # fmt: skip
    await expect(page.get_by_role("button", name="Acknowledge")).to_have_count(len(mine))
    await expect(page.get_by_role("button", name="Silence…")).to_have_count(len(mine))
    await expect(page.get_by_test_id("alerts")).not_to_contain_text("BR-NAI")
    # the demo's mailbox holds every branch's alerts: not theirs to read, and not in the menu
    await expect(page.locator("#nav-mail")).to_be_hidden()
    mail = await stack.client.get(
        "/v1/demo/mail", headers={"Authorization": f"Bearer {MANAGER_KEY}"}
    )
    assert mail.status_code == 403 and mail.json()["errors"][0]["field"] == "mail"

    # the API through her session refuses or filters what the identity provider's test checks
    reach = await stack.client.post("/v1/objectives", json=BRANCH_REACH)
    assert reach.status_code == 201, reach.text
    async with session_client(page, stack.dev.base_url) as person:
        await assert_branch_scope(person, stack.admin, "BR-MSA", "BR-NAI")
    assert page.errors == []  # type: ignore[attr-defined]
    await page.context.close()
