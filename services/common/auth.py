"""API-key authentication with scopes, for every HTTP endpoint but health.

Keys are configured per caller (a source system, a dashboard, a person) and stored only as
SHA-256 hashes: ``API_KEYS='[{"name": "fineract", "sha256": "<hex>", "scopes": ["ingest:write"],
"sources": ["fineract:default"]}]'``. ``admin`` grants every scope. ``sources`` restricts which
CloudEvents ``source`` values an ingest key may send (empty = any).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

if TYPE_CHECKING:
    from services.common.identity.local_issuer import IssuerVerifier
    from services.common.settings import CommonSettings

ADMIN = "admin"
SCOPES = (
    "ingest:write",
    "indicators:read",
    "objectives:read",
    "objectives:write",
    "alerts:read",
    "alerts:ack",
    ADMIN,
)


class ApiKeyConfig(BaseModel):
    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[str]
    sources: list[str] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a machine's API key, or a person signed in (then ``subject`` is set).

    ``name`` is what audit trails show (a key's name or a person's display name); ``subject`` is
    the person's stable identifier at their identity provider (or ``local:<user>``). ``branches``
    limits the data a person sees to those branches' segments; ``None`` means no limit.
    """

    name: str
    scopes: frozenset[str]
    sources: frozenset[str] = frozenset()
    subject: str | None = None
    roles: frozenset[str] = frozenset()
    branches: frozenset[str] | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes

    def may_send(self, source: str) -> bool:
        return not self.sources or source in self.sources

    def sees_branch(self, branch: str) -> bool:
        return self.branches is None or branch in self.branches


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The configured keys, looked up by hash in constant time per candidate; and, when the
    dashboard's issuer is trusted, the people it signs tokens for (:meth:`resolve`)."""

    def __init__(self, keys: Iterable[ApiKeyConfig], tokens: IssuerVerifier | None = None) -> None:
        self._keys = list(keys)
        self.tokens = tokens

    @classmethod
    def from_json(cls, raw: str | None, tokens: IssuerVerifier | None = None) -> KeyRing:
        if not raw:
            return cls([], tokens)
        try:
            return cls(TypeAdapter(list[ApiKeyConfig]).validate_python(json.loads(raw)), tokens)
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"API_KEYS is not a valid key list: {exc}") from None

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> KeyRing:
        """``API_KEYS`` and the trusted ``DASHBOARD_ISSUER`` of a service's settings."""
        from services.common.identity.local_issuer import verifier_from

        raw = settings.api_keys.get_secret_value() if settings.api_keys else None
        tokens = verifier_from(settings.dashboard_issuer, settings.dashboard_token_audience)
        return cls.from_json(raw, tokens)

    async def resolve(self, presented: str) -> Principal | None:
        """An API key's principal, or a signed-in person's from a JWT of the trusted issuer."""
        if self.tokens is not None:
            from services.common.identity.local_issuer import looks_like_jwt

            if looks_like_jwt(presented):
                return await self.tokens.principal(presented)
        return self.authenticate(presented)

    def authenticate(self, presented: str) -> Principal | None:
        digest = hash_key(presented)
        for key in self._keys:
            if hmac.compare_digest(digest, key.sha256):
                return Principal(key.name, frozenset(key.scopes), frozenset(key.sources))
        return None


_bearer = HTTPBearer(auto_error=False)
PRINCIPAL_STATE = "principal"


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (None for other schemes)."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def verified_principal(request: Request) -> Principal | None:
    """The principal the request guard (services.common.guard) verified, if it did."""
    found = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    return found if isinstance(found, Principal) else None


def keyring_of(request: Request) -> KeyRing:
    keyring = getattr(request.app.state, "keyring", None)
    if not isinstance(keyring, KeyRing):
        raise RuntimeError("app.state.keyring is not configured")
    return keyring


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    verified = verified_principal(request)
    if verified is not None:
        return verified
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer credential",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await keyring_of(request).resolve(credentials.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown API key",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only principals holding ``scope``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.has(scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this key lacks scope {scope}")
        return principal

    return dependency
