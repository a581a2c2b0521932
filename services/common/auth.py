"""API-key authentication with scopes, for every HTTP endpoint but health.

Keys are configured per caller (a source system, a dashboard, a person) and stored only as
SHA-256 hashes: ``API_KEYS='[{"name": "fineract", "sha256": "<hex>", "scopes": ["ingest:write"],
"sources": ["fineract:default"]}]'``. ``admin`` grants every scope. ``sources`` restricts which
CloudEvents ``source`` values an ingest key may send (empty = any). ``branches`` limits the data a
key sees to those branches (services.common.scope; absent = no limit), and ``subject`` makes the
key stand for a person (audit trails record it beside the name): the same fields a person's
sign-in fills, so branch scope is testable and usable with keys alone.


People present bearer JWTs from the institution's identity provider instead (``OIDC_ISSUERS``):
the key ring hands a token that looks like a JWT to services.common.identity, which maps it to
the same ``Principal`` (roles -> scopes, branch limit).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from services.common.errors import Forbidden, error_body

if TYPE_CHECKING:
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
    branches: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]] | None = None
    subject: str | None = Field(default=None, min_length=1, max_length=200)


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


UNKNOWN_KEY = "unknown API key"
MISSING_CREDENTIAL = "missing bearer credential"


class Unauthenticated(HTTPException):
    """401 with the challenge of RFC 6750 (``error="invalid_token"`` once a credential was
    presented); the service apps render it in the one error shape (``unauthenticated``)."""

    def __init__(self, reason: str, *, presented: bool) -> None:
        challenge = 'Bearer error="invalid_token"' if presented else "Bearer"
        super().__init__(status.HTTP_401_UNAUTHORIZED, reason, {"WWW-Authenticate": challenge})
        self.reason = reason


async def unauthenticated(request: Request, exc: Exception) -> Response:
    """The exception handler of ``Unauthenticated``: the error shape, field ``Authorization``."""
    reason = exc.reason if isinstance(exc, Unauthenticated) else "unauthenticated"
    headers = exc.headers if isinstance(exc, HTTPException) else None
    return JSONResponse(
        error_body([("Authorization", reason)], reason), status_code=401, headers=headers
    )


class TokenCheck(Protocol):
    """Bearer tokens that are not API keys (services.common.identity.jwt.TokenVerifier)."""

    def accepts(self, token: str) -> bool: ...

    async def verify(self, token: str) -> Principal: ...


class KeyRing:
    """The configured keys, looked up by hash in constant time per candidate, and the trusted
    token issuers, if any (``tokens``)."""

    def __init__(self, keys: Iterable[ApiKeyConfig], tokens: TokenCheck | None = None) -> None:
        self._keys = list(keys)
        self.tokens = tokens

    @classmethod
    def from_json(cls, raw: str | None) -> KeyRing:
        if not raw:
            return cls([])
        try:
            return cls(TypeAdapter(list[ApiKeyConfig]).validate_python(json.loads(raw)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"API_KEYS is not a valid key list: {exc}") from None

    @classmethod
    def of(cls, settings: CommonSettings) -> KeyRing:
        """API keys (``API_KEYS``) and trusted issuers (``OIDC_ISSUERS``) of ``settings``."""
        ring = cls.from_json(settings.api_keys.get_secret_value() if settings.api_keys else None)
        if settings.oidc_issuers:
            from services.common.identity.jwt import TokenVerifier  # imports this module

            ring.tokens = TokenVerifier(
                settings.oidc_issuers,
                algorithms=settings.oidc_algorithms,
                leeway_s=settings.oidc_leeway_s,
                min_refresh_s=settings.oidc_jwks_min_refresh_s,
                timeout_s=settings.oidc_http_timeout_s,
            )
        return ring

    async def check(self, presented: str) -> Principal:
        """The principal of an API key or a trusted token; raises ``Unauthenticated``."""
        if self.tokens is not None and self.tokens.accepts(presented):
            return await self.tokens.verify(presented)
        principal = self.authenticate(presented)
        if principal is None:
            raise Unauthenticated(UNKNOWN_KEY, presented=True)
        return principal

    def authenticate(self, presented: str) -> Principal | None:
        digest = hash_key(presented)
        for key in self._keys:
            if hmac.compare_digest(digest, key.sha256):
                return Principal(
                    key.name,
                    frozenset(key.scopes),
                    frozenset(key.sources),
                    subject=key.subject,
                    branches=None if key.branches is None else frozenset(key.branches),
                )
        return None


_bearer = HTTPBearer(auto_error=False)
PRINCIPAL_STATE = "principal"
REFUSAL_STATE = "auth_refusal"  # why the guard did not accept the presented credential


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
        raise Unauthenticated(MISSING_CREDENTIAL, presented=False)
    refusal = request.scope.get("state", {}).get(REFUSAL_STATE)
    if isinstance(refusal, Unauthenticated):  # the guard checked this credential already
        raise refusal
    return await keyring_of(request).check(credentials.credentials)


CallerDep = Annotated[Principal, Depends(authenticate)]
"""Any authenticated caller: what a service's state dependency needs first, so that an
anonymous request learns 401, not whether the service has started (503)."""


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only principals holding ``scope``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.has(scope):
            raise Forbidden("Authorization", f"this key lacks scope {scope}")
        return principal

    return dependency
