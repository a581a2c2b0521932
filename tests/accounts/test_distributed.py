"""``spm serve dashboard`` on the distributed stack: the four services as ``spm serve`` processes
on the session's Kafka and PostgreSQL, the dashboard server in front of them, accounts made with
``spm users``. Chromium signs in with a local account and sees the targets and alerts the
services hold, acknowledges an alert under the person's name; sign-out, disable, lock-out and
CSRF are checked against the real processes, and no password shows up in any log."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from spm.accounts.bridge import COOKIE
from spm.accounts.config import trusted_issuer
from spm.report.build import MEDIA
from tests.alerts.servers import REPO, Proc, SmtpServer, free_port
from tests.dashboard.harness import browser, signed_in
from tests.e2e.four_services import ADMIN, SERVICES, assert_drift_reaches_the_inbox, service_env

__all__ = ["browser"]  # the fixture (tests/dashboard/harness.py)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

PASSWORDS = {"amina": "amina's long password 1", "lockme": "lockme's long password 2"}
WRONG = "a wrong password of hers"


@pytest.fixture
def env(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer, tmp_path: Path
) -> dict[str, str]:
    port = free_port()
    return {
        **service_env(kafka_bootstrap, postgres_url, unique, smtp),
        "DASHBOARD_PORT": str(port),
        "DASHBOARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "OIDC_ISSUERS": json.dumps([trusted_issuer(f"http://127.0.0.1:{port}")]),
        "ACCOUNTS_DB_SCHEMA": f"accounts_{unique}",
        "DASHBOARD_SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem"),
    }


@pytest.fixture
def stack(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, Proc]]:
    procs = {s: Proc(env, free_port(), tmp_path / f"{s}.log", s) for s in SERVICES}
    for name, proc in procs.items():
        env[f"DASHBOARD_{name.upper()}_URL"] = f"http://127.0.0.1:{proc.port}"
    procs["dashboard"] = Proc(
        env, int(env["DASHBOARD_PORT"]), tmp_path / "dashboard.log", "dashboard"
    )
    yield procs
    for p in procs.values():
        p.stop()


def users(env: dict[str, str], *args: str, stdin: str = "") -> str:
    """``spm users …`` as an operator runs it; the password (if any) on standard input."""
    done = subprocess.run(  # noqa: S603 - our own CLI
        [str(REPO / ".venv" / "bin" / "spm"), "users", *args],
        cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


async def test_sign_in_through_the_dashboard_server(
    stack: dict[str, Proc], env: dict[str, str], smtp: SmtpServer, unique: str, browser: Browser
) -> None:
    services = {s: stack[s] for s in SERVICES}
    await assert_drift_reaches_the_inbox(services, smtp, unique)  # targets, events, an alert
    outputs = [
        users(env, "add", "amina", "--role", "spm_officer", "--name", "Amina Otieno",
              "--password-stdin", stdin=PASSWORDS["amina"] + "\n"),
        users(env, "add", "lockme", "--role", "branch_manager", "--branch", f"BR-{unique}",
              "--password-stdin", stdin=PASSWORDS["lockme"] + "\n"),
    ]  # fmt: skip
    dashboard = stack["dashboard"]
    dashboard.start()
    await dashboard.ready(within=60)  # its /readyz asks the four services' too
    base = f"http://127.0.0.1:{dashboard.port}"

    # the browser signs in with the local account and sees the services' data
    page = await signed_in(
        browser,
        base + "/dashboard",
        "amina",
        PASSWORDS["amina"],
        viewport={"width": 1280, "height": 900},
    )
    context = page.context
    await expect(page.get_by_test_id("who-name")).to_have_text("Amina Otieno")
    await expect(page.get_by_test_id("who-scope")).to_have_text("SPM officer · all branches")
    await expect(page.locator("tr[data-target]")).to_have_count(1)
    await page.get_by_role("link", name="Alerts").click()
    firing = page.locator('tr[data-state="firing"]')
    await expect(firing.first).to_be_visible(timeout=30_000)
    alert_id = await firing.first.get_attribute("data-alert")
    await firing.first.get_by_role("button", name="Acknowledge").click()
    await expect(page.get_by_text("Acknowledged:")).to_be_visible()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(timeout=30) as client:
        alerts_url = f"http://127.0.0.1:{stack['alerts'].port}/v1/alerts/{alert_id}"
        acked = (await client.get(alerts_url, headers=admin)).json()
    assert acked["acked_by"] == "Amina Otieno"  # the person, not a key
    cookies = [c for c in await context.cookies() if c["name"] == COOKIE]
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    old_session = cookies[0]["value"]

    # sign-out revokes the session on the server: the old cookie is dead
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        replay = await client.get("/v1/alerts", headers={"Cookie": f"{COOKIE}={old_session}"})
        assert replay.status_code == 401, replay.text
    assert page.errors == []  # type: ignore[attr-defined]
    await context.close()

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        # a state-changing request without the CSRF token is refused before the service
        login = await client.post(
            "/auth/login", json={"username": "amina", "password": PASSWORDS["amina"]}
        )
        assert login.status_code == 200
        csrf = login.json()["csrf_token"]
        forged = await client.post(f"/v1/alerts/{alert_id}/ack", json={"comment": "x"})
        assert forged.status_code == 403 and "CSRF" in forged.text
        assert (await client.get("/v1/alerts")).status_code == 200
        # the board report, built by the dashboard server from the services read as her
        month = acked["as_of"][:7]
        report = await client.get("/v1/report", params={"month": month, "format": "xlsx"})
        assert report.status_code == 200, report.text
        assert report.headers["content-type"] == MEDIA["xlsx"] and report.content[:2] == b"PK"
        assert f"{month}" in report.headers["content-disposition"]
        later = await client.get("/v1/report", params={"month": "2099-12", "format": "xlsx"})
        assert later.status_code == 422 and later.json()["errors"][0]["field"] == "query.month"
        assert "the indicators' business date is 20" in later.text, later.text
        async with httpx.AsyncClient(base_url=base, timeout=30) as nobody:
            anonymous = await nobody.get("/v1/report", params={"month": month, "format": "xlsx"})
        assert anonymous.status_code == 401, anonymous.text
        # disabling the account ends the session at once
        outputs.append(users(env, "disable", "amina"))
        gone = await client.get("/v1/alerts")
        assert gone.status_code == 401, gone.text
        assert (
            await client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
        ).status_code == 401
        client.cookies.clear()

        # five wrong passwords lock the account, even against the right one afterwards
        answers = []
        for _ in range(5):
            answers.append(
                await client.post("/auth/login", json={"username": "lockme", "password": WRONG})
            )
        assert [a.status_code for a in answers] == [401, 401, 401, 401, 423]
        right = await client.post(
            "/auth/login", json={"username": "lockme", "password": PASSWORDS["lockme"]}
        )
        assert right.status_code == 423
        outputs.append(users(env, "list"))
        assert "lockme\tbranch_manager\tBR-" in outputs[-1] and "\tlocked\t" in outputs[-1]
        answers += [login, forged, right]

    # no password in any answer, any log or the commands' output
    texts = [a.text for a in answers] + outputs
    texts += [p.log.read_text(errors="replace") for p in stack.values()]
    for secret in (*PASSWORDS.values(), WRONG):
        assert not any(secret in text for text in texts), secret
