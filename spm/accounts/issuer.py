"""The dashboard server as a token issuer: ES256 JWTs for the person of a session.

The services verify them against the JWKS this publishes at ``config.JWKS_PATH``: the dashboard
is one of their trusted issuers (``OIDC_ISSUERS``, services.common.identity), like the
institution's OpenID Connect provider.
The private key lives in a PEM file (``DASHBOARD_SIGNING_KEY_FILE``), created at first start;
its key id is the RFC 7638 thumbprint of the public key, so a replaced key gets a new id and the
services fetch the JWKS again when they meet it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from spm.accounts.store import User


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
        raise ValueError(f"{path} is not a P-256 EC private key (ES256)")
    return loaded


class TokenIssuer:
    def __init__(
        self, key: ec.EllipticCurvePrivateKey, issuer: str, audience: str, ttl_s: int
    ) -> None:
        self._key = key
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.ttl_s = ttl_s
        public = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        self.kid = _thumbprint(public)
        self._jwk = {**public, "kid": self.kid, "use": "sig", "alg": "ES256"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._jwk]}

    def token_for(self, user: User) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user.subject,
            "name": user.display_name,
            "preferred_username": user.username,
            "roles": [user.role],
            "iat": now,
            "nbf": now - 5,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        if user.branches is not None:
            claims["branches"] = list(user.branches)
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})

    def seal(self, claims: dict[str, Any], audience: str, ttl_s: int) -> str:
        """A short-lived value only this server can have made (the OpenID Connect sign-in's
        flow cookie): its claims, signed, with ``audience`` so it never passes as a token."""
        now = int(time.time())
        body = {**claims, "iss": self.issuer, "aud": audience, "iat": now, "exp": now + ttl_s}
        return jwt.encode(body, self._key, algorithm="ES256", headers={"kid": self.kid})

    def unseal(self, value: str, audience: str) -> dict[str, Any] | None:
        """The claims of a value :meth:`seal` made for ``audience``; None if forged or old."""
        try:
            claims: dict[str, Any] = jwt.decode(
                value,
                self._key.public_key(),
                algorithms=["ES256"],
                audience=audience,
                issuer=self.issuer,
                options={"require": ["exp", "aud", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        return claims


def _thumbprint(public: dict[str, Any]) -> str:
    import base64
    import hashlib

    canonical = json.dumps(
        {k: public[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
