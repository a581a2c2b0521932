"""An OpenID Connect issuer of the test's own: its keys, its JWKS on a real HTTP server, and
tokens it signs, so the tests can make what a real provider never would (``alg: none``, an
HMAC token signed with the public key, a token signed by a key nobody publishes) and rotate
keys at will."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from services.common.settings import CommonSettings
from tests.common.http_server import serving

AUDIENCE = "spm-monitor"


@dataclass
class SigningKey:
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


@dataclass
class LocalIssuer:
    url: str
    published: list[SigningKey]
    jwks_requests: int = 0

    @property
    def issuer(self) -> str:
        return self.url

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": [AUDIENCE, "account"],
            "sub": "f3b1c2d4-0000-4000-8000-000000000001",
            "iat": now,
            "exp": now + 300,
            "name": "Wanjiru Kamau",
            "preferred_username": "wkamau",
            "realm_access": {"roles": ["branch_manager", "offline_access"]},
            "spm_branches": ["BR-MSA"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, key: SigningKey | None = None, **overrides: Any) -> str:
        key = key or self.published[0]
        return jwt.encode(
            self.claims(**overrides), key.private, algorithm="RS256", headers={"kid": key.kid}
        )


@contextlib.asynccontextmanager
async def local_issuer() -> AsyncIterator[LocalIssuer]:
    """The issuer, its discovery document and JWKS served on 127.0.0.1 (a free port)."""
    app = FastAPI()
    state: list[LocalIssuer] = []

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, str]:
        return {"issuer": state[0].issuer, "jwks_uri": f"{state[0].url}/jwks"}

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        state[0].jwks_requests += 1
        return {"keys": [k.jwk() for k in state[0].published]}

    async with serving(app, CommonSettings()) as port:
        state.append(LocalIssuer(f"http://127.0.0.1:{port}", [SigningKey()]))
        yield state[0]
