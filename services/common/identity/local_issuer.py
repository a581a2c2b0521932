"""The services' side of the dashboard's sign-in: bearer JWTs the dashboard server signs.

A person signed in to the dashboard (``spm serve dashboard``) calls the services through its
reverse proxy, which forwards their identity as a short-lived ES256 JWT it signed itself (see
``spm.accounts.issuer``). A service trusts it when ``DASHBOARD_ISSUER`` names the dashboard's URL:
the token must carry that ``iss``, the audience ``DASHBOARD_TOKEN_AUDIENCE``, an unexpired
``exp``, a ``sub``, and be signed by a key of the issuer's JWKS
(``<issuer>/.well-known/jwks.json``, fetched over HTTP, cached, fetched again when a token names
a key id it does not know, so a rotated key is picked up without restart). Only ES256 is
accepted: ``alg: none`` and HMAC confusion are refused by PyJWT's algorithm list.

The ``roles`` claim maps to scopes through :data:`ROLE_SCOPES`; the ``branches`` claim (a list)
limits the data a person sees, absent = no limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
import jwt

from services.common.auth import ADMIN, Principal

ALGORITHMS = ["ES256"]
JWKS_PATH = "/.well-known/jwks.json"
JWKS_MAX_AGE_S = 300.0
JWKS_MIN_REFETCH_S = 10.0
"""An unknown ``kid`` fetches the JWKS again, but not more often than this (a flood of forged
tokens must not become a flood of requests to the issuer)."""

_READ = ("indicators:read", "objectives:read", "alerts:read")
ROLE_SCOPES: Mapping[str, frozenset[str]] = {
    "viewer": frozenset(_READ),
    "branch_manager": frozenset({*_READ, "alerts:ack"}),
    "spm_officer": frozenset({*_READ, "alerts:ack", "objectives:write"}),
    "risk_compliance": frozenset({*_READ, "alerts:ack"}),
    "administrator": frozenset({ADMIN}),
}
"""What each role may do (docs/operations.md "Roles")."""

_static: dict[str, dict[str, Any]] = {}


def publish_in_process(issuer: str, jwks: dict[str, Any]) -> None:
    """Make an issuer's JWKS known without HTTP: the embedded mode's dashboard and services share
    one process, where fetching our own URL would be a detour (and tests run it without a port)."""
    _static[issuer.rstrip("/")] = jwks


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def scopes_of(roles: frozenset[str]) -> frozenset[str]:
    return frozenset().union(*(ROLE_SCOPES.get(r, frozenset()) for r in roles))


class IssuerVerifier:
    """Verifies one trusted issuer's tokens and turns them into a :class:`Principal`."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        min_refetch_s: float = JWKS_MIN_REFETCH_S,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.jwks_url = jwks_url or self.issuer + JWKS_PATH
        self.min_refetch_s = min_refetch_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -1e9
        self._lock = asyncio.Lock()

    async def principal(self, token: str) -> Principal | None:
        """The verified person, or None for any token this issuer did not validly sign."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        if header.get("alg") not in ALGORITHMS:
            return None
        key = await self._key(str(header.get("kid", "")))
        if key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        return principal_of(claims)

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        stale = time.monotonic() - self._fetched_at > JWKS_MAX_AGE_S
        if kid in self._keys and not stale:
            return self._keys[kid]
        async with self._lock:
            since = time.monotonic() - self._fetched_at
            if (kid not in self._keys or stale) and since >= self.min_refetch_s:
                await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        document = _static.get(self.issuer)
        if document is None:
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.get(self.jwks_url)
                    response.raise_for_status()
                    document = response.json()
            except (httpx.HTTPError, json.JSONDecodeError):
                return  # keep the keys we had; the issuer may be restarting
        try:
            keys = jwt.PyJWKSet.from_dict(document).keys
        except jwt.PyJWTError:
            return
        self._keys = {str(k.key_id): k for k in keys if k.key_id}


BRANCH_LIMITED_ROLES = frozenset({"branch_manager"})
"""Roles that see no branch unless the token names theirs: a missing claim never widens."""


def principal_of(claims: Mapping[str, Any]) -> Principal:
    roles = frozenset(str(r) for r in claims.get("roles") or [] if isinstance(r, str))
    claimed = claims.get("branches")
    branches = frozenset(str(b) for b in claimed) if isinstance(claimed, list) else None
    known = roles & set(ROLE_SCOPES)
    if branches is None and known and known <= BRANCH_LIMITED_ROLES:
        branches = frozenset()
    return Principal(
        name=str(claims.get("name") or claims["sub"]),
        scopes=scopes_of(roles),
        subject=str(claims["sub"]),
        roles=roles,
        branches=branches,
    )


def verifier_from(issuer: str | None, audience: str) -> IssuerVerifier | None:
    return IssuerVerifier(issuer, audience) if issuer else None
