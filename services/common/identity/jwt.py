"""Bearer JWTs from trusted OpenID Connect issuers -> a ``Principal``, or a refusal and why.

Checked: the algorithm is an allowed asymmetric one (``none`` and the HMAC family are refused
before anything else: a public key must never serve as an HMAC secret), the issuer is one we
trust, the key is the issuer's (from its JWKS, see ``jwks``), then signature, ``iss``, ``aud``,
``exp`` and ``nbf`` (with a small leeway for clock skew) and that ``sub`` is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

import jwt

from services.common.auth import Principal, Unauthenticated
from services.common.identity.jwks import IssuerKeys
from services.common.identity.roles import ROLE_SCOPES, branch_limit, scopes_for
from services.common.identity.settings import Algorithm, TrustedIssuer

ASYMMETRIC_ALGORITHMS: tuple[str, ...] = get_args(Algorithm)
"""What ``OIDC_ALGORITHMS`` may list; HS* and ``none`` are never accepted."""

_REQUIRED = ["exp", "iat", "iss", "aud", "sub"]


def looks_like_jwt(token: str) -> bool:
    """A compact JWS: three base64url parts, the first a JSON object (``eyJ`` = ``{"``). API
    keys are random strings without dots, so the two never meet."""
    return token.count(".") == 2 and token.startswith("eyJ")


class TokenVerifier:
    """Verifies tokens of the configured issuers, each with its own key cache."""

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        *,
        algorithms: Sequence[str] = ("RS256", "PS256", "ES256"),
        leeway_s: float = 30.0,
        min_refresh_s: float = 30.0,
        timeout_s: float = 5.0,
    ) -> None:
        refused = sorted(set(algorithms) - set(ASYMMETRIC_ALGORITHMS))
        if refused:
            raise ValueError(f"algorithms {refused} are not accepted for bearer tokens")
        self.algorithms = frozenset(algorithms)
        self.leeway_s = leeway_s
        self.keys = {
            i.issuer: IssuerKeys(i, min_refresh_s=min_refresh_s, timeout_s=timeout_s)
            for i in issuers
        }

    def accepts(self, token: str) -> bool:
        return looks_like_jwt(token)

    async def verify(self, token: str) -> Principal:
        """The principal the token names; raises ``Unauthenticated`` with the reason."""
        claims, trusted = await self.verified_claims(token)
        return principal_of(claims, trusted)

    async def verified_claims(self, token: str) -> tuple[dict[str, Any], TrustedIssuer]:
        """The token's claims once every check has passed, and the issuer that vouches for
        them (the dashboard's OpenID Connect sign-in also checks an ID token's ``nonce``)."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _invalid("not a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise _invalid(f"signing algorithm {algorithm!r} is not accepted")
        issuer_keys = self.keys.get(unverified.get("iss"))  # type: ignore[arg-type]
        if issuer_keys is None:
            raise _invalid("the token's issuer is not trusted")
        kid = header.get("kid")
        key = await issuer_keys.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise _invalid("signed by a key the issuer does not publish")
        trusted = issuer_keys.issuer
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=trusted.audience,
                issuer=trusted.issuer,
                leeway=self.leeway_s,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise _invalid(f"the token is not meant for audience {trusted.audience}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _invalid(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise _invalid("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise _invalid(f"invalid token: {exc}") from None
        return claims, trusted


def principal_of(claims: dict[str, Any], issuer: TrustedIssuer) -> Principal:
    """Who the verified claims name, with the scopes of their roles and their branch limit."""
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise _invalid("the token's sub claim is not a string")
    provider_roles = _strings(claim_at(claims, issuer.roles_claim), issuer.roles_claim)
    mapped = {issuer.role_names.get(r, r) for r in provider_roles or ()}
    roles = frozenset(r for r in mapped if r in ROLE_SCOPES)
    claimed = _strings(claim_at(claims, issuer.branches_claim), issuer.branches_claim)
    name = claim_at(claims, issuer.name_claim) or claims.get("preferred_username") or subject
    return Principal(
        name=str(name),
        scopes=scopes_for(roles),
        subject=subject,
        roles=roles,
        branches=branch_limit(roles, claimed),
    )


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``realm_access.roles``), None where any step is missing."""
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _strings(value: Any, claim: str) -> frozenset[str] | None:
    """A claim that lists names: a list of strings, or one string (a single-valued attribute
    mapper); None when absent. Anything else is refused: a limit we cannot read must not fall
    back to no limit."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise _invalid(f"the token's {claim} claim is not a list of strings")


def _invalid(reason: str) -> Unauthenticated:
    return Unauthenticated(reason, presented=True)
