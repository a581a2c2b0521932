"""A stack for browser tests: the embedded mode exactly as ``spm dev`` composes it
(:func:`spm.devmode.build_dev_stack`: the four services on the in-process bus and SQLite, the
dashboard, a local SMTP sink), served on a real HTTP port, with the sample strategy loaded and
the simulator fed through the ingest API. Nothing is faked.

The browser signs in with a local account (an SPM officer, no admin); the harness loads the
strategy and feeds events with the stack's admin key, and reads the APIs with a staff key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from playwright.async_api import Browser, Page, async_playwright, expect

from services.common.auth import hash_key
from spm.devmode import SAMPLE_STRATEGY, DevStack, build_dev_stack
from spm.simulator import SimConfig
from spm.simulator.runner import run
from spm.simulator.sinks import HttpSink
from tests.infra import free_port

STAFF_KEY = "dashboard-staff-key-0123"
STAFF_USER = "amina"
STAFF_NAME = "Amina Otieno"
STAFF_PASSWORD = "a staff password 0123"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCOPES = ["indicators:read", "objectives:read", "objectives:write", "alerts:read", "alerts:ack"]


@dataclass
class Stack:
    url: str
    """The dashboard's address."""
    dev: DevStack
    client: httpx.AsyncClient
    """Talks to every API in-process, with the staff key."""
    admin: httpx.AsyncClient
    """The same with the stack's admin key."""

    async def get(self, service: str, path: str, **params: Any) -> httpx.Response:
        """``service`` only says whose API ``path`` is (all share one origin)."""
        return await self.client.get(path, params=params)


async def _load_strategy(client: httpx.AsyncClient) -> None:
    text = await asyncio.to_thread(SAMPLE_STRATEGY.read_text)
    for objective in yaml.safe_load(text)["objectives"]:
        body = json.loads(json.dumps(objective, default=str))
        response = await client.post("/v1/objectives", json=body)
        assert response.status_code == 201, response.text  # the first time: no retry


async def _caught_up(client: httpx.AsyncClient, last_day: str, within_s: float = 240.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        response = await client.get("/v1/indicators", params={"code": "active_clients"})
        if response.status_code == 200 and response.json().get("as_of") == last_day:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"the indicator service did not reach {last_day}")


@asynccontextmanager
async def _serve(dev: DevStack, port: int) -> AsyncIterator[None]:
    """The stack's ASGI app on ``port``; its lifespan is run by the caller."""
    server = uvicorn.Server(
        uvicorn.Config(dev.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
        assert not task.done(), "the dashboard server did not start"
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await task


def _client(dev: DevStack, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=dev.app),
        base_url=dev.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60.0,
    )


@asynccontextmanager
async def dashboard_stack(
    tmp: Path, config: SimConfig, extra_keys: list[dict[str, Any]] | None = None
) -> AsyncIterator[Stack]:
    """``extra_keys``: more ``API_KEYS`` entries (e.g. a branch-limited person's)."""
    port = free_port()
    staff = {"name": "staff", "sha256": hash_key(STAFF_KEY), "scopes": SCOPES}
    dev = build_dev_stack(
        data_dir=tmp,
        port=port,
        alert_overrides={"alerts_group_wait_s": 0},
        extra_api_keys=[staff, *(extra_keys or [])],
    )
    async with (
        dev.host_app.router.lifespan_context(dev.host_app),
        _serve(dev, port),
        _client(dev, dev.api_key) as admin,
        _client(dev, STAFF_KEY) as client,
    ):
        await dev.accounts.opened().add(STAFF_USER, STAFF_NAME, "spm_officer", STAFF_PASSWORD)
        await _load_strategy(admin)
        await run(config, HttpSink(dev.base_url, dev.api_key, client=admin))
        await _caught_up(client, config.end.isoformat())
        yield Stack(f"{dev.base_url}/dashboard", dev, client, admin)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, driven by Playwright (import it into a module to use it there)."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def new_page(browser: Browser, **options: Any) -> Page:
    """A page in a context of its own; ``page.errors`` collects its uncaught script errors."""
    context = await browser.new_context(**options)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def signed_in(
    browser: Browser,
    url: str,
    username: str = STAFF_USER,
    password: str = STAFF_PASSWORD,
    **options: Any,
) -> Page:
    """A new page signed in at the dashboard at ``url`` with a local account, once the overview
    has loaded completely (a page still loading would overwrite the next one)."""
    page = await new_page(browser, **options)
    await sign_in(page, url, username, password)
    heading = page.get_by_role("heading", name="Social targets")
    await expect(heading).to_be_visible(timeout=30_000)  # its first load fans out to every API
    await expect(page.locator("#main[aria-busy]")).to_have_count(0)
    return page


async def sign_in(page: Page, url: str, username: str, password: str) -> None:
    """The local sign-in form of the dashboard at ``url`` (every browser test signs in here)."""
    await page.goto(url + "/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def sign_in_at_provider(
    page: Page, url: str, provider: str, username: str, password: str
) -> None:
    """ "Sign in with <provider>" on the dashboard at ``url``, then the identity provider's own
    login page (Keycloak's form: ``#username``, ``#password``, ``#kc-login``)."""
    await page.goto(url + "/")
    await page.get_by_role("link", name=f"Sign in with {provider}").click()
    # the dashboard's own form has a #username too: fill only once Keycloak's page is there
    await expect(page.locator("#kc-login")).to_be_visible()
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(password)
    await page.locator("#kc-login").click()


@asynccontextmanager
async def session_client(page: Page, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client holding the browser's session cookie (and its CSRF token): the API as the
    signed-in person sees it."""
    jar = await page.context.cookies()
    cookies = {c["name"]: c["value"] for c in jar if "name" in c and "value" in c}
    async with httpx.AsyncClient(base_url=base_url, cookies=cookies, timeout=60.0) as client:
        session = await client.get("/auth/session")
        assert session.status_code == 200, session.text
        client.headers["X-CSRF-Token"] = session.json()["csrf_token"]
        yield client
