"""Settings of the dashboard server (``spm serve dashboard``) and its local accounts."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from services.common.identity.settings import TrustedIssuer
from services.common.settings import CommonSettings

SERVICE_NAMES = ("ingest", "indicators", "objectives", "alerts")
JWKS_PATH = "/.well-known/jwks.json"


def trusted_issuer(url: str, audience: str = "spm-monitor") -> dict[str, str]:
    """An ``OIDC_ISSUERS`` entry for a dashboard server at ``url``."""
    url = url.rstrip("/")
    return {
        "issuer": url,
        "audience": audience,
        "jwks_url": url + JWKS_PATH,
        "roles_claim": "roles",
        "branches_claim": "branches",
        "name_claim": "name",
    }


class DashboardSettings(CommonSettings):
    dashboard_port: int = Field(default=8005, ge=1, le=65535)
    accounts_db_schema: str = Field(
        default="accounts",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema of the local accounts and sessions.",
    )
    dashboard_signing_key_file: str = Field(
        default="var/dashboard-signing-key.pem",
        description="PEM file of the ES256 key the dashboard signs its people's tokens with; "
        "created (mode 0600) at first start if absent. Keep it on a volume: a new key only "
        "makes the services refetch the JWKS, but several replicas must share one file.",
    )
    dashboard_public_url: str | None = Field(
        default=None,
        description="The dashboard's own URL as the services reach it: the iss of its tokens "
        "(the issuer of its entry in the services' OIDC_ISSUERS must be the same). "
        "Default: http://127.0.0.1:<DASHBOARD_PORT>.",
    )
    dashboard_token_audience: str = Field(
        default="spm-monitor",
        description="The aud of its tokens (the audience of its entry in OIDC_ISSUERS).",
    )
    dashboard_token_ttl_s: int = Field(
        default=300, ge=30, le=3600, description="Lifetime of a token forwarded to a service."
    )
    dashboard_session_ttl_s: int = Field(
        default=8 * 3600, ge=60, description="A session ends this long after sign-in."
    )
    dashboard_lockout_failures: int = Field(
        default=5, ge=1, description="Wrong passwords in a row that lock an account."
    )
    dashboard_lockout_s: int = Field(
        default=900, ge=1, description="How long a locked account stays locked."
    )
    dashboard_login_rate_limit: str = Field(
        default="20/minute",
        description="Sign-in attempts per client address and process (`limits` notation); "
        "more: 429 + Retry-After, before any password is hashed.",
    )
    dashboard_ingest_url: str = Field(
        default="http://127.0.0.1:8001", description="Where the proxy finds the ingest API."
    )
    dashboard_indicators_url: str = Field(
        default="http://127.0.0.1:8002", description="Where the proxy finds the indicators API."
    )
    dashboard_objectives_url: str = Field(
        default="http://127.0.0.1:8003", description="Where the proxy finds the objectives API."
    )
    dashboard_alerts_url: str = Field(
        default="http://127.0.0.1:8004", description="Where the proxy finds the alerts API."
    )
    dashboard_proxy_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest wait for a service's answer (then 504)."
    )
    dashboard_secure_cookie: bool | None = Field(
        default=None,
        description="Mark the session cookie Secure: true behind a TLS-terminating proxy; "
        "unset = when the request came over https.",
    )
    dashboard_title: str = Field(default="SPM Monitor", description="The page's title.")
    dashboard_oidc_issuer: str | None = Field(
        default=None,
        description='Offer "Sign in with <institution>" (OpenID Connect authorization code + '
        "PKCE) against this issuer; it must be the issuer of an OIDC_ISSUERS entry, whose "
        "audience and claims say what the person's access token grants. Unset: local accounts "
        "only.",
    )
    dashboard_oidc_client_id: str = Field(
        default="spm-dashboard", min_length=1, description="The dashboard's client at the issuer."
    )
    dashboard_oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="Its secret when the client is confidential; unset for a public client "
        "(PKCE protects the code either way).",
    )
    dashboard_oidc_name: str = Field(
        default="your institution",
        min_length=1,
        max_length=80,
        description='The name on the sign-in button: "Sign in with <name>".',
    )
    dashboard_oidc_redirect_url: str | None = Field(
        default=None,
        description="Where the provider sends the browser back (registered at the provider): "
        "the dashboard's callback at the address browsers use. "
        "Default: <DASHBOARD_PUBLIC_URL>/auth/oidc/callback.",
    )
    dashboard_oidc_scopes: str = Field(
        default="openid profile email",
        pattern=r"(^|.* )openid( .*|$)",
        description="Scopes asked for at sign-in (space-separated; must include openid).",
    )

    @model_validator(mode="after")
    def _oidc_issuer_trusted(self) -> Self:
        if self.dashboard_oidc_issuer is not None and self.oidc_provider() is None:
            raise ValueError(
                "DASHBOARD_OIDC_ISSUER must be the issuer of one of the OIDC_ISSUERS entries"
            )
        return self

    def oidc_provider(self) -> TrustedIssuer | None:
        """The OIDC_ISSUERS entry of the sign-in provider (None: no OIDC sign-in)."""
        wanted = (self.dashboard_oidc_issuer or "").rstrip("/")
        return next(
            (i for i in self.oidc_issuers if wanted and i.issuer.rstrip("/") == wanted), None
        )

    @property
    def issuer(self) -> str:
        url = self.dashboard_public_url or f"http://127.0.0.1:{self.dashboard_port}"
        return url.rstrip("/")

    def trusted_issuer(self) -> dict[str, str]:
        """The dashboard's entry in the services' ``OIDC_ISSUERS``: its tokens carry the roles
        and branches of the local account in plain ``roles`` / ``branches`` claims."""
        return trusted_issuer(self.issuer, self.dashboard_token_audience)

    def service_urls(self) -> dict[str, str]:
        return {name: getattr(self, f"dashboard_{name}_url").rstrip("/") for name in SERVICE_NAMES}
