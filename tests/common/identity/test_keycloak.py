"""Tokens from a real Keycloak (started once per session, tests.keycloak): a realm, the
dashboard and BI clients and users made through its admin API, their tokens accepted by the
services with the right principal, bad ones refused, and its key rotation picked up live."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from services.common.bus import MemoryBus
from services.indicators.config import IndicatorSettings
from tests.common.identity.local_issuer import SigningKey
from tests.common.identity.test_jwt import bearer, service, unsigned
from tests.indicators.conftest import started
from tests.keycloak import AUDIENCE, KEYCLOAK_TIMEOUT, Keycloak, Realm

pytestmark = KEYCLOAK_TIMEOUT


@pytest.fixture(scope="module")
def realm(keycloak: Keycloak) -> Iterator[Realm]:
    made = Realm(keycloak)
    made.create()
    made.add_user("ana-admin", "administrator")
    made.add_user("msa-manager", "branch_manager", ["BR-MSA"])
    made.add_user("nai-manager", "branch_manager", ["BR-NAI"])
    made.add_user("una-manager", "branch_manager")  # no branches attribute
    yield made


@pytest.fixture
async def client(realm: Realm) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service(realm.issuer))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as c:
        yield c


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def who(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/v1/who", headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_people_get_their_roles_and_branches(
    client: httpx.AsyncClient, realm: Realm, keycloak: Keycloak
) -> None:
    print(f"keycloak start-up as seen by the session: {keycloak.startup_s:.1f} s")
    admin_token = await asyncio.to_thread(realm.password_token, "ana-admin")
    admin = await who(client, admin_token)
    assert admin["name"] == "Ana Tester"
    assert admin["subject"] == claims_of(admin_token)["sub"]
    assert admin["roles"] == ["administrator"]
    assert admin["scopes"] == ["admin"]
    assert admin["branches"] is None

    msa = await who(client, await asyncio.to_thread(realm.password_token, "msa-manager"))
    assert msa["roles"] == ["branch_manager"]
    assert msa["branches"] == ["BR-MSA"]
    assert "objectives:write" not in msa["scopes"]
    nai = await who(client, await asyncio.to_thread(realm.password_token, "nai-manager"))
    assert nai["branches"] == ["BR-NAI"]
    # a branch manager whose branches the provider does not name sees no branch
    una = await who(client, await asyncio.to_thread(realm.password_token, "una-manager"))
    assert una["branches"] == []


async def test_the_bi_tools_client_credentials_read_indicators(
    realm: Realm, tmp_path: Path
) -> None:
    token = await asyncio.to_thread(realm.bi_token)
    settings = IndicatorSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}",
        oidc_issuers=[{"issuer": realm.issuer, "audience": AUDIENCE}],
    )
    async with started(settings, MemoryBus()) as h:
        transport = httpx.ASGITransport(app=h.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as bi:
            values = await bi.get("/v1/indicators", headers=bearer(token))
            assert values.status_code == 200, values.text
            assert "items" in values.json()
            catalog = await bi.get("/v1/catalog", headers=bearer(token))
            assert catalog.status_code == 200 and catalog.json(), catalog.text


async def test_keycloak_tokens_not_meant_for_us_are_refused(
    client: httpx.AsyncClient, realm: Realm, keycloak: Keycloak
) -> None:
    elsewhere = await asyncio.to_thread(realm.password_token, "msa-manager", "elsewhere")
    assert AUDIENCE not in claims_of(elsewhere).get("aud", [])
    master = await asyncio.to_thread(admin_cli_token, keycloak)  # another realm: untrusted
    genuine = await asyncio.to_thread(realm.password_token, "msa-manager")
    kid = jwt.get_unverified_header(genuine)["kid"]
    forged = jwt.encode(claims_of(genuine), SigningKey().private, "RS256", {"kid": kid})
    stranger = SigningKey()
    unknown_key = jwt.encode(claims_of(genuine), stranger.private, "RS256", {"kid": stranger.kid})
    for what, token, reason in (
        ("wrong audience", elsewhere, "audience"),
        ("wrong issuer", master, "issuer"),
        ("re-signed with the realm's kid", forged, "signature"),
        ("signed by an unknown key", unknown_key, "key the issuer does not publish"),
        ("alg none", unsigned(claims_of(genuine)), "algorithm"),
    ):
        response = await client.get("/v1/who", headers=bearer(token))
        assert response.status_code == 401, (what, response.text)
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert reason in response.json()["detail"], (what, response.text)


async def test_an_expired_keycloak_token_is_refused(realm: Realm) -> None:
    await asyncio.to_thread(realm.set_token_lifespan, 1)
    try:
        token = await asyncio.to_thread(realm.password_token, "msa-manager")
    finally:
        await asyncio.to_thread(realm.set_token_lifespan, 300)
    expires = claims_of(token)["exp"]
    app = service(realm.issuer, oidc_leeway_s=0)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service"
    ) as client:
        deadline = expires + 15
        while (response := await client.get("/v1/who", headers=bearer(token))).status_code == 200:
            assert time.time() < deadline, "a token past its exp is still accepted"
            await asyncio.sleep(0.2)
        assert response.status_code == 401, response.text
        assert time.time() >= expires  # refused because, and only once, it expired
        assert "expired" in response.json()["detail"]


async def test_a_key_rotated_in_keycloak_is_picked_up_without_a_restart(realm: Realm) -> None:
    app = service(realm.issuer, oidc_jwks_min_refresh_s=0)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service"
    ) as client:
        before = await asyncio.to_thread(realm.password_token, "nai-manager")
        assert (await who(client, before))["branches"] == ["BR-NAI"]  # keys now cached
        old_kid = jwt.get_unverified_header(before)["kid"]
        await asyncio.to_thread(realm.add_rsa_key, "rotated", 500)
        after = await asyncio.to_thread(realm.password_token, "nai-manager")
        new_kid = jwt.get_unverified_header(after)["kid"]
        assert new_kid != old_kid and new_kid == await asyncio.to_thread(realm.active_kid)
        assert (await who(client, after))["branches"] == ["BR-NAI"]  # the same app instance
        assert (await who(client, before))["branches"] == ["BR-NAI"]  # the old key still valid


def admin_cli_token(keycloak: Keycloak) -> str:
    response = httpx.post(
        f"{keycloak.url}/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": keycloak.admin,
            "password": keycloak.admin_password,
        },
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])
