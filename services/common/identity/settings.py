"""What the operator configures per trusted issuer (setting ``OIDC_ISSUERS``, a JSON list)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from services.common.identity.roles import ROLES

Algorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
"""The signature algorithms a bearer token may use: asymmetric only. ``none`` and the HMAC
family are not in it, so no setting can turn them on (a public key must never serve as an HMAC
secret, and an unsigned token proves nothing)."""


class TrustedIssuer(BaseModel):
    """One OpenID Connect provider whose access tokens the services accept.

    ``issuer`` must equal the tokens' ``iss`` exactly; ``audience`` must be among their ``aud``
    (a Keycloak audience mapper puts it there). ``jwks_url`` defaults to the ``jwks_uri`` of
    ``<issuer>/.well-known/openid-configuration``. Claim paths are dotted (``realm_access.roles``
    is where Keycloak puts realm roles). ``role_names`` renames the provider's roles to ours
    (``{"spm-viewers": "viewer"}``); a role that is neither ours nor renamed grants nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_url: HttpUrl | None = None
    roles_claim: str = Field(default="realm_access.roles", min_length=1)
    branches_claim: str = Field(default="spm_branches", min_length=1)
    name_claim: str = Field(default="name", min_length=1)
    role_names: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_roles(self) -> Self:
        unknown = sorted(set(self.role_names.values()) - set(ROLES))
        if unknown:
            raise ValueError(f"role_names maps to unknown roles {unknown}; ours are {list(ROLES)}")
        return self
