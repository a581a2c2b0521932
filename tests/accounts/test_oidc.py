"""\"Sign in with <institution>\" through a real Keycloak, on the dashboard server as ``spm serve
dashboard`` builds it (its proxy in front of the services of an embedded stack that holds the
simulator's data and trusts the realm, like the distributed services would).

Chromium clicks the button, types the branch manager's username and password on Keycloak's own
login page, and comes back signed in: the overview shows their branch's targets and the
institution's, nothing of the other branch, and the API through their session refuses or
filters the other branch's values, series, breakdown rows, CSV rows, alerts and silences. The
tokens never reach the browser; an expired access token is refreshed before it is forwarded.
Sign-out kills the session cookie (401) and Keycloak's session (the next sign-in asks for the
password again); when Keycloak ends the person's session, the next refresh is refused and the
dashboard's session ends too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, expect

from spm.accounts.bridge import COOKIE
from spm.accounts.config import DashboardSettings, trusted_issuer
from spm.accounts.oidc import FLOW_COOKIE
from spm.accounts.server import DashboardServer, build_dashboard
from spm.accounts.store import AccountStore, Session
from spm.simulator import Scenario, SimConfig
from tests.alerts.servers import free_port
from tests.dashboard.branch_scope import BRANCH_REACH, alerts_of, assert_branch_scope
from tests.dashboard.harness import (
    Stack,
    browser,
    dashboard_stack,
    new_page,
    session_client,
    sign_in_at_provider,
)
from tests.keycloak import AUDIENCE, KEYCLOAK_TIMEOUT, PASSWORD, Keycloak, Realm

__all__ = ["browser"]  # the fixture (tests/dashboard/harness.py)

MANAGER = "amani-msa"  # Keycloak makes "Amani Tester" of it
PROVIDER = "Test MFI"
CONFIG = SimConfig(seed=7, start=date(2026, 1, 1), days=120, clients=300, scenario=Scenario.drift)

pytestmark = [pytest.mark.slow, KEYCLOAK_TIMEOUT]


@dataclass
class Signed:
    stack: Stack
    realm: Realm
    url: str
    """The dashboard server's address."""
    sessions: AccountStore


@contextlib.asynccontextmanager
async def _serve_dashboard(settings: DashboardSettings) -> AsyncIterator[DashboardServer]:
    server = build_dashboard(settings)
    config = uvicorn.Config(
        server.app,
        host="127.0.0.1",
        port=settings.dashboard_port,
        log_level="warning",
        lifespan="off",
    )
    running = uvicorn.Server(config)
    async with server.host.router.lifespan_context(server.host):
        task = asyncio.create_task(running.serve())
        while not running.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
            assert not task.done(), "the dashboard server did not start"
            await asyncio.sleep(0.05)
        try:
            yield server
        finally:
            running.should_exit = True
            await task


@pytest.fixture
async def signed(
    keycloak: Keycloak, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Signed]:
    realm = Realm(keycloak)
    await asyncio.to_thread(realm.create)
    await asyncio.to_thread(realm.add_user, MANAGER, "branch_manager", ["BR-MSA"])
    provider = {"issuer": realm.issuer, "audience": AUDIENCE}
    # the services trust the realm (OIDC_ISSUERS, read by the embedded stack's settings)
    monkeypatch.setenv("OIDC_ISSUERS", json.dumps([provider]))
    async with dashboard_stack(tmp_path / "stack", CONFIG) as stack:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        services = stack.dev.base_url
        settings = DashboardSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}",
            dashboard_port=port,
            dashboard_public_url=url,
            dashboard_signing_key_file=str(tmp_path / "dashboard-key.pem"),
            oidc_issuers=[provider, trusted_issuer(url)],
            dashboard_oidc_issuer=realm.issuer,
            dashboard_oidc_name=PROVIDER,
            dashboard_ingest_url=services,
            dashboard_indicators_url=services,
            dashboard_objectives_url=services,
            dashboard_alerts_url=services,
        )  # fmt: skip
        async with _serve_dashboard(settings) as server:
            yield Signed(stack, realm, url, server.accounts.opened())


async def test_a_branch_manager_signs_in_through_keycloak(signed: Signed, browser: Browser) -> None:
    stack, url = signed.stack, signed.url
    created = await stack.client.post("/v1/objectives", json=BRANCH_REACH)
    assert created.status_code == 201, created.text
    ids = {t["segment"]: t["id"] for t in created.json()["targets"]}
    await alerts_of(stack.client, "branch:BR-MSA")  # both branches' targets are evaluated

    page = await new_page(browser, viewport={"width": 1280, "height": 900})
    await sign_in_at_provider(page, url + "/dashboard", PROVIDER, MANAGER, PASSWORD)
    heading = page.get_by_role("heading", name="Social targets")
    await expect(heading).to_be_visible(timeout=30_000)
    await expect(page.get_by_test_id("who-name")).to_have_text("Amani Tester")
    await expect(page.get_by_test_id("who-scope")).to_have_text("Branch manager · BR-MSA")
    await expect(page.locator(f'tr[data-target="{ids["branch:BR-MSA"]}"]')).to_have_count(1)
    await expect(page.locator(f'tr[data-target="{ids["branch:BR-NAI"]}"]')).to_have_count(0)
    assert await page.locator("tr[data-target]").count() == 10  # 9 institution-level + MSA
    await expect(page.locator("main")).not_to_contain_text("BR-NAI")

    # ours is only the session cookie: no token, and the flow cookie is gone (Keycloak's own
    # cookies share the host: cookies do not tell ports apart)
    cookies = [
        c for c in await page.context.cookies()
        if not c.get("name", "").startswith(("KC_", "KEYCLOAK_", "AUTH_SESSION_ID"))
    ]  # fmt: skip
    assert [c.get("name") for c in cookies] == [COOKIE], cookies
    assert cookies[0].get("httpOnly") and cookies[0].get("sameSite") == "Strict"
    assert not any(c.get("name") == FLOW_COOKIE for c in await page.context.cookies())
    assert not any(c.get("value", "").startswith("eyJ") for c in cookies)
    stored = await page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
    assert "eyJ" not in stored

    async with session_client(page, url) as person:
        me = (await person.get("/v1/me")).json()
        assert me["branches"] == ["BR-MSA"] and me["subject"] != f"local:{MANAGER}", me
        assert me["name"] == "Amani Tester"
        await assert_branch_scope(person, stack.admin, "BR-MSA", "BR-NAI")
        # the board report, built by the dashboard server itself, knows her too
        report = await person.get("/v1/report", params={"month": "2026-03", "format": "xlsx"})
        assert report.status_code == 200 and report.content[:2] == b"PK", report.text
        old = dict(person.cookies)
        await _refreshes(signed, person, old[COOKIE])

    # sign-out: the session dies on the server, and Keycloak's session with it
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    async with httpx.AsyncClient(base_url=url, cookies=old, timeout=30) as replay:
        assert (await replay.get("/v1/alerts")).status_code == 401
        assert (await replay.get("/auth/session")).status_code == 401
    await page.get_by_role("link", name=f"Sign in with {PROVIDER}").click()
    await expect(page.locator("#kc-login")).to_be_visible()  # Keycloak's page, not ours
    await expect(page.locator("#password")).to_be_visible()  # asked again, not let through
    assert page.url.startswith(signed.realm.issuer), page.url
    await page.locator("#username").fill(MANAGER)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#kc-login").click()
    await expect(page.get_by_test_id("who-name")).to_have_text("Amani Tester")
    await _a_refused_refresh_ends_the_session(signed, page)
    assert page.errors == []  # type: ignore[attr-defined]
    await page.context.close()


async def _expire_access_token(sessions: AccountStore, cookie: str) -> Session:
    """As if the access token's lifetime had passed (the session row says when it ends)."""
    session = await sessions.session(cookie)
    assert session is not None and session.tokens is not None
    past = datetime.now(UTC) - timedelta(seconds=1)
    await sessions.store_tokens(session, replace(session.tokens, access_expires_at=past))
    return session


async def _refreshes(signed: Signed, person: httpx.AsyncClient, cookie: str) -> None:
    """An expired access token is refreshed before the request is forwarded."""
    before = await _expire_access_token(signed.sessions, cookie)
    me = await person.get("/v1/me")
    assert me.status_code == 200 and me.json()["branches"] == ["BR-MSA"], me.text
    after = await signed.sessions.session(cookie)
    assert after is not None and after.tokens is not None and before.tokens is not None
    assert after.tokens.access_token != before.tokens.access_token
    assert after.tokens.access_expires_at > datetime.now(UTC)


async def _a_refused_refresh_ends_the_session(signed: Signed, page: Page) -> None:
    """Keycloak ends the person's sessions (an administrator signs them out): the next refresh
    is refused, and the dashboard's session ends with it."""
    async with session_client(page, signed.url) as person:
        cookie = dict(person.cookies)[COOKIE]
        assert (await person.get("/v1/me")).status_code == 200
        await asyncio.to_thread(signed.realm.sign_out, MANAGER)
        await _expire_access_token(signed.sessions, cookie)
        ended = await person.get("/v1/me")
        assert ended.status_code == 401 and ended.json()["errors"][0]["field"] == "session"
        assert await signed.sessions.session(cookie) is None
