"""Bearer JWTs against a service app: what is accepted, what is refused (401) and why, and key
rotation, with an issuer of the test's own (tests.common.identity.local_issuer) serving a real
JWKS over HTTP. The same checks against a real Keycloak: test_keycloak.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, FastAPI

from services.common.auth import Principal, require
from services.common.http import create_service_app
from services.common.settings import CommonSettings
from tests.common.identity.local_issuer import AUDIENCE, LocalIssuer, SigningKey, local_issuer


def service(issuer: LocalIssuer | str, **overrides: Any) -> FastAPI:
    """A service app trusting ``issuer`` whose GET route needs ``indicators:read`` and shows
    who called (its POST route needs ``alerts:ack``)."""
    url = issuer if isinstance(issuer, str) else issuer.issuer
    settings = CommonSettings(
        oidc_issuers=[{"issuer": url, "audience": AUDIENCE}],
        **overrides,
    )
    router = APIRouter()

    @router.get("/v1/who")
    async def who(principal: Annotated[Principal, Depends(require("indicators:read"))]) -> Any:
        return {
            "name": principal.name,
            "subject": principal.subject,
            "roles": sorted(principal.roles),
            "scopes": sorted(principal.scopes),
            "branches": None if principal.branches is None else sorted(principal.branches),
        }

    @router.post("/v1/who")
    async def who_post(principal: Annotated[Principal, Depends(require("alerts:ack"))]) -> Any:
        return {"name": principal.name}

    return create_service_app(
        service="test",
        title="test",
        description="test",
        settings=settings,
        routers=[router],
    )


@pytest.fixture
async def issuer() -> AsyncIterator[LocalIssuer]:
    async with local_issuer() as running:
        yield running


@pytest.fixture
async def client(issuer: LocalIssuer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service(issuer))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def hmac_with_public_key(issuer: LocalIssuer) -> str:
    """The classic confusion attack: HS256 keyed with the issuer's *public* key (PEM)."""
    key = issuer.published[0]
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = b64(json.dumps(issuer.claims()).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


async def test_a_valid_token_is_the_person_it_names(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await client.get("/v1/who", headers=bearer(issuer.token()))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "Wanjiru Kamau",
        "subject": "f3b1c2d4-0000-4000-8000-000000000001",
        "roles": ["branch_manager"],  # offline_access is not ours: dropped
        "scopes": ["alerts:ack", "alerts:read", "indicators:read", "objectives:read"],
        "branches": ["BR-MSA"],
    }
    posted = await client.post("/v1/who", headers=bearer(issuer.token()), json={})
    assert posted.status_code == 200, posted.text


def refusals(issuer: LocalIssuer) -> dict[str, tuple[str, str]]:
    """name -> (token, words the reason must contain)."""
    now = int(time.time())
    stranger = SigningKey()  # never published
    published_kid = issuer.published[0].kid
    return {
        "wrong audience": (issuer.token(aud="another-app"), "audience"),
        "wrong issuer": (issuer.token(iss="https://sso.elsewhere.example/realms/x"), "issuer"),
        "expired": (issuer.token(iat=now - 4000, exp=now - 3600), "expired"),
        "not yet valid": (issuer.token(nbf=now + 3600), "not valid yet"),
        "unknown key": (issuer.token(key=stranger), "key"),
        "forged kid": (  # a published kid, a stranger's signature
            jwt.encode(issuer.claims(), stranger.private, "RS256", {"kid": published_kid}),
            "signature",
        ),
        "alg none": (unsigned(issuer.claims()), "algorithm"),
        "hs256 with the public key": (hmac_with_public_key(issuer), "algorithm"),
        "no sub": (issuer.token(sub=None), "sub"),
        "no exp": (issuer.token(exp=None), "exp"),
        "branches not a list": (issuer.token(spm_branches={"a": 1}), "spm_branches"),
        "garbage": ("eyJhbGciOi.not-base64.x", "well-formed"),
    }


async def test_bad_tokens_are_refused_401_with_the_reason(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    for what, (token, reason) in refusals(issuer).items():
        for method in ("GET", "POST"):  # bodyless: the route refuses; with a body: the guard
            response = await client.request(
                method, "/v1/who", headers=bearer(token), json={} if method == "POST" else None
            )
            assert response.status_code == 401, (what, method, response.text)
            assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            body = response.json()
            assert body["errors"][0]["field"] == "Authorization", (what, body)
            assert reason in body["detail"], (what, method, body)
            assert token not in response.text  # the token is never echoed


async def test_no_refetch_within_the_refresh_interval(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    assert (await client.get("/v1/who", headers=bearer(issuer.token()))).status_code == 200
    fetched = issuer.jwks_requests
    rotated = SigningKey()
    early = issuer.token(key=rotated)
    refused = await client.get("/v1/who", headers=bearer(early))  # not published yet
    assert refused.status_code == 401
    issuer.published.insert(0, rotated)  # the provider rotates: new key first, old still there
    # a refetch within OIDC_JWKS_MIN_REFRESH_S is not allowed: still refused, no new request
    assert (await client.get("/v1/who", headers=bearer(early))).status_code == 401
    assert issuer.jwks_requests == fetched


async def test_rotation_is_picked_up_once_the_refresh_interval_allows(
    issuer: LocalIssuer,
) -> None:
    app = service(issuer, oidc_jwks_min_refresh_s=0)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service"
    ) as client:
        assert (await client.get("/v1/who", headers=bearer(issuer.token()))).status_code == 200
        rotated = SigningKey()
        issuer.published = [rotated, *issuer.published]
        response = await client.get("/v1/who", headers=bearer(issuer.token(key=rotated)))
        assert response.status_code == 200, response.text
        before = issuer.jwks_requests
        again = await client.get("/v1/who", headers=bearer(issuer.token(key=rotated)))
        assert again.status_code == 200
        assert issuer.jwks_requests == before  # a known key costs no request
        issuer.published = [rotated]  # the old key retired
        old = await client.get("/v1/who", headers=bearer(issuer.token(key=SigningKey())))
        assert old.status_code == 401


async def test_made_up_key_ids_do_not_flood_the_provider(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    for _ in range(20):
        response = await client.get("/v1/who", headers=bearer(issuer.token(key=SigningKey())))
        assert response.status_code == 401
    assert issuer.jwks_requests == 1  # the first unknown kid fetched; the others waited


async def test_a_token_without_our_roles_is_403(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.token(realm_access={"roles": ["offline_access"]})
    response = await client.get("/v1/who", headers=bearer(token))
    assert response.status_code == 403, response.text


async def test_api_keys_still_work_beside_tokens(issuer: LocalIssuer) -> None:
    from services.common.auth import hash_key

    keys = json.dumps([{"name": "bi", "sha256": hash_key("k-123"), "scopes": ["indicators:read"]}])
    app = service(issuer, api_keys=keys)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service"
    ) as client:
        assert (await client.get("/v1/who", headers=bearer("k-123"))).json()["name"] == "bi"
        assert (await client.get("/v1/who", headers=bearer("k-124"))).status_code == 401
        assert (await client.get("/v1/who", headers=bearer(issuer.token()))).status_code == 200


async def test_an_unreachable_provider_means_401_not_500(issuer: LocalIssuer) -> None:
    from tests.alerts.servers import free_port

    gone = f"http://127.0.0.1:{free_port()}/realms/gone"  # nothing listens there
    app = service(gone)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service"
    ) as client:
        for _ in range(3):
            response = await client.get("/v1/who", headers=bearer(issuer.token(iss=gone)))
            assert response.status_code == 401, response.text
            assert "key the issuer does not publish" in response.json()["detail"]
        keys = next(iter(app.state.keyring.tokens.keys.values()))
        assert keys.fetches == 1  # asked once, then rate-limited
