"""Local accounts in the embedded mode as ``spm dev`` composes it (real SQLite, the real services
behind the session bridge): sign-in, lock-out, CSRF, sign-out and disable revoke sessions,
passwords never in answers or logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from spm.accounts.bridge import COOKIE
from spm.devmode import build_dev_stack

PASSWORD = "correct horse battery staple"


@dataclass
class Running:
    client: httpx.AsyncClient
    dev: object

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.dev.accounts.opened()  # type: ignore[attr-defined]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    dev = build_dev_stack(data_dir=tmp_path, port=49150)
    async with dev.host_app.router.lifespan_context(dev.host_app):
        await dev.accounts.opened().add(
            "amina", "Amina Otieno", "branch_manager", PASSWORD, ["BR-MSA"]
        )
        transport = httpx.ASGITransport(app=dev.app)
        async with httpx.AsyncClient(transport=transport, base_url=dev.base_url) as client:
            yield Running(client, dev)


async def _login(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/auth/login", json={"username": "amina", "password": password})


async def test_a_signed_in_person_reaches_the_apis_as_themselves(running: Running) -> None:
    client = running.client
    assert (await client.get("/v1/alerts")).status_code == 401
    login = await _login(client)
    assert login.status_code == 200
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    body = login.json()
    assert body["user"] == {
        "username": "amina", "name": "Amina Otieno", "role": "branch_manager",
        "branches": ["BR-MSA"],
    }  # fmt: skip
    assert "alerts:ack" in body["scopes"] and "objectives:write" not in body["scopes"]
    assert (await client.get("/v1/alerts")).status_code == 200
    session = (await client.get("/auth/session")).json()
    assert session["user"]["name"] == "Amina Otieno"
    # a branch manager may not write targets: the services saw her role, not a key
    created = await client.post(
        "/v1/objectives", json={}, headers={"X-CSRF-Token": body["csrf_token"]}
    )
    assert created.status_code == 403, created.text


async def test_state_changing_requests_need_the_csrf_token(running: Running) -> None:
    client = running.client
    csrf = (await _login(client)).json()["csrf_token"]
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        refused = await client.post("/v1/silences", json={}, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["errors"][0]["field"] == "x-csrf-token"
        assert (await client.post("/auth/logout", headers=headers)).status_code == 403
    # with the token the request reaches the service (which validates the body)
    accepted = await client.post("/v1/silences", json={}, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 422, accepted.text
    # the login form takes JSON only: a cross-site HTML form cannot post it
    form = await client.post("/auth/login", data={"username": "amina", "password": PASSWORD})
    assert form.status_code == 422


async def test_five_wrong_passwords_lock_the_account(running: Running) -> None:
    client = running.client
    for _ in range(4):
        assert (await _login(client, "wrong password!")).status_code == 401
    locked = await _login(client, "wrong password!")
    assert locked.status_code == 423, locked.text
    right = await _login(client)
    assert right.status_code == 423  # even the right password, while locked
    assert COOKIE not in right.headers.get("set-cookie", "")
    await running.store.reset_password("amina", "a brand new password")
    assert (await _login(client, "a brand new password")).status_code == 200


async def test_an_unknown_user_is_told_the_same_as_a_wrong_password(running: Running) -> None:
    unknown = await running.client.post(
        "/auth/login", json={"username": "nobody", "password": PASSWORD}
    )
    wrong = await _login(running.client, "wrong password!")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


async def test_sign_out_ends_the_session_on_the_server(running: Running) -> None:
    client = running.client
    login = await _login(client)
    session_id = client.cookies[COOKIE]
    assert (
        await client.post("/auth/logout", headers={"X-CSRF-Token": login.json()["csrf_token"]})
    ).status_code == 204
    # the old cookie, replayed, is dead: at the session endpoint and at the APIs
    replay = {"Cookie": f"{COOKIE}={session_id}"}
    client.cookies.clear()
    assert (await client.get("/auth/session", headers=replay)).status_code == 401
    assert (await client.get("/v1/alerts", headers=replay)).status_code == 401


async def test_disabling_an_account_ends_its_sessions(running: Running) -> None:
    client = running.client
    await _login(client)
    assert (await client.get("/v1/alerts")).status_code == 200
    await running.store.set_disabled("amina", True)
    assert (await client.get("/v1/alerts")).status_code == 401
    assert (await client.get("/auth/session")).status_code == 401
    assert (await _login(client)).status_code == 401
    await running.store.set_disabled("amina", False)
    assert (await _login(client)).status_code == 200


async def test_passwords_are_never_answered_or_logged(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = running.client
    answers = [await _login(client, "wrong password!"), await _login(client)]
    answers.append(await client.get("/auth/session"))
    answers.append(await client.get("/dashboard/config.json"))
    for answer in answers:
        assert PASSWORD not in answer.text and "wrong password!" not in answer.text
        assert "argon2" not in answer.text
    assert PASSWORD not in caplog.text and "wrong password!" not in caplog.text
    users = await running.store.list()
    assert all(PASSWORD not in repr(u) for u in users)


async def test_the_embedded_mode_answers_readyz(running: Running) -> None:
    ready = await running.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_accounts_are_checked_before_they_are_stored(running: Running) -> None:
    from spm.accounts.store import AccountError

    bad = [
        (("Amina", "x", "viewer", PASSWORD), "username"),
        (("bob", "Bob", "king", PASSWORD), "role"),
        (("bob", "Bob", "viewer", "short"), "password"),
        (("bob", "Bob", "branch_manager", PASSWORD), "branches"),
        (("amina", "Again", "viewer", PASSWORD), "username"),  # exists
    ]
    for args, field in bad:
        with pytest.raises(AccountError) as refused:
            await running.store.add(*args)
        assert refused.value.field == field, args
    assert [u.username for u in await running.store.list()] == ["amina"]


async def test_an_expired_session_is_refused_and_purged(running: Running) -> None:
    import sqlalchemy as sa

    from spm.accounts import models as m

    client = running.client
    await _login(client)
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with running.store.engine.begin() as conn:
        await conn.execute(m.sessions.update().values(expires_at=past))
    assert (await client.get("/v1/alerts")).status_code == 401
    client.cookies.clear()
    await _login(client)
    async with running.store.engine.connect() as conn:
        left = await conn.scalar(sa.select(sa.func.count()).select_from(m.sessions))
    assert left == 1  # the new one; the expired one went at this sign-in


async def test_sign_in_attempts_are_rate_limited_per_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_LOGIN_RATE_LIMIT", "3/minute")
    dev = build_dev_stack(data_dir=tmp_path, port=49151)
    async with dev.host_app.router.lifespan_context(dev.host_app):
        transport = httpx.ASGITransport(app=dev.app)
        async with httpx.AsyncClient(transport=transport, base_url=dev.base_url) as client:
            tries = [
                await client.post("/auth/login", json={"username": f"u{i}", "password": "p"})
                for i in range(4)
            ]
    assert [t.status_code for t in tries] == [401, 401, 401, 429]
    assert int(tries[-1].headers["Retry-After"]) >= 1
