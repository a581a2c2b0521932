"""The JWKS cache: requests arriving while the first fetch is under way wait for its keys (a
page's first requests come together), and an issuer in this very process is read without HTTP
(the embedded mode's dashboard)."""

from __future__ import annotations

import asyncio
import time

import jwt

from services.common.auth import KeyRing
from services.common.identity.jwks import publish_in_process
from services.common.settings import CommonSettings
from tests.common.identity.local_issuer import AUDIENCE, SigningKey, local_issuer


async def test_concurrent_first_requests_all_wait_for_the_one_fetch() -> None:
    async with local_issuer() as issuer:
        settings = CommonSettings(oidc_issuers=[{"issuer": issuer.issuer, "audience": AUDIENCE}])
        ring = KeyRing.of(settings)
        token = issuer.token()
        people = await asyncio.gather(*(ring.check(token) for _ in range(8)))
        assert {p.subject for p in people} == {issuer.claims()["sub"]}
        assert issuer.jwks_requests == 1


async def test_keys_published_in_process_verify_without_http() -> None:
    url = "http://127.0.0.1:1/in-process-issuer"  # nothing listens on port 1
    jwks_url = f"{url}/.well-known/jwks.json"
    key = SigningKey()
    publish_in_process(jwks_url, {"keys": [key.jwk()]})
    settings = CommonSettings(
        oidc_issuers=[
            {"issuer": url, "audience": AUDIENCE, "jwks_url": jwks_url, "roles_claim": "roles"}
        ]
    )
    claims: dict[str, object] = {
        "iss": url,
        "aud": AUDIENCE,
        "sub": "local:amina",
        "roles": ["viewer"],
    }
    now = int(time.time())
    claims |= {"iat": now, "exp": now + 300}
    token = jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})
    person = await KeyRing.of(settings).check(token)
    assert person.subject == "local:amina"
    assert "indicators:read" in person.scopes
