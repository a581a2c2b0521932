"""Settings shared by every service, from the environment or secret files.

Secrets (the pseudonym pepper, API keys) may also come from files: point ``SPM_SECRETS_DIR`` at
a directory with one file per setting (e.g. ``/run/secrets/pseudonym_pepper``), as Docker and
Kubernetes mount them. The database password may come from such a file too
(``database_password``): it is put into ``DATABASE_URL``, which then need not carry one.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.identity.settings import Algorithm, TrustedIssuer

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/spm.db"
MIB = 1024 * 1024


def _secrets_dir() -> str | None:
    path = os.environ.get("SPM_SECRETS_DIR")
    return path if path and os.path.isdir(path) else None


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="", secrets_dir=_secrets_dir(), extra="ignore", frozen=True
    )

    kafka_bootstrap_servers: str | None = Field(
        default=None, description="Kafka brokers; unset = in-process bus (embedded mode)."
    )
    database_url: str = Field(
        default=DEFAULT_SQLITE_URL,
        description="SQLAlchemy async URL: postgresql+asyncpg://… or sqlite+aiosqlite:///…",
    )
    database_password: SecretStr | None = Field(
        default=None,
        description="Password put into DATABASE_URL (e.g. from the secret file "
        "database_password), so the URL in the environment carries none.",
    )
    kafka_client_id: str = "spm-monitor"
    kafka_request_timeout_ms: int = Field(default=10_000, ge=100)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How every Kafka client connects; SASL_SSL in production."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (a secret: may come from SPM_SECRETS_DIR)."
    )
    kafka_ssl_cafile: str | None = Field(
        default=None, description="CA bundle the brokers' certificates are checked against."
    )
    database_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = (
        Field(default=None, description="PostgreSQL TLS; unset = the driver's default (prefer).")
    )
    database_ssl_root_cert: str | None = Field(
        default=None, description="CA bundle the PostgreSQL server certificate is checked against."
    )

    http_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8001, ge=1, le=65535)
    indicators_port: int = Field(default=8002, ge=1, le=65535)
    objectives_port: int = Field(default=8003, ge=1, le=65535)
    alerts_port: int = Field(default=8004, ge=1, le=65535)
    dev_port: int = Field(default=8000, ge=1, le=65535)

    # limits and timeouts of every HTTP server (README "Security")
    http_max_body_bytes: int = Field(
        default=MIB,
        ge=1024,
        description="Largest request body of a route with no limit of its own (more: 413, "
        "refused from Content-Length before reading, or as soon as the stream passes it).",
    )
    http_body_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for the next piece of a body (then 408)."
    )
    http_header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time from a new connection (or a request's first byte) to its last header "
        "line; a client still sending headers then is disconnected (slow-headers clients).",
    )
    http_max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Largest request line + headers (more: 431)."
    )
    http_keep_alive_s: int = Field(
        default=5, ge=1, description="How long an idle keep-alive connection stays open."
    )
    http_retry_after_s: int = Field(
        default=5,
        ge=1,
        description="Retry-After of every 503 (the database, Kafka or the service itself is not "
        "ready): how long a client waits before trying again.",
    )
    http_limit_concurrency: int = Field(
        default=1000,
        ge=1,
        description="Most connections + requests in progress per process (more: 503).",
    )

    institution_currency: str = Field(default="KES", pattern=r"^[A-Z]{3}$")
    institution_timezone: str = "UTC"

    log_format: Literal["json", "text"] = Field(
        default="json", description="Logs on stdout: JSON lines, or text for a terminal."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_namespace: str = "spm-monitor"

    pseudonym_pepper: SecretStr | None = Field(
        default=None, description="HMAC key for pseudonyms; required by the ingest service."
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="API keys as JSON: [{name, sha256, scopes, sources, branches, subject}] "
        "(hashes only).",
    )
    scope_institution_level_visible: bool = Field(
        default=True,
        description="Branch-limited callers also see institution-level values (all, product, "
        "gender, rural segments) and alerts.",
    )
    # people's bearer tokens from the institution's identity provider (docs/security.md)
    oidc_issuers: list[TrustedIssuer] = Field(
        default_factory=list,
        description="Trusted OpenID Connect issuers as JSON: [{issuer, audience, jwks_url, "
        "roles_claim, branches_claim, name_claim, role_names}]; empty = API keys only.",
    )
    oidc_algorithms: list[Algorithm] = Field(
        default=["RS256", "PS256", "ES256"],
        min_length=1,
        description="Signature algorithms accepted in bearer tokens (asymmetric only: "
        "none and HS* are never accepted).",
    )
    oidc_leeway_s: float = Field(
        default=30.0, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat."
    )
    oidc_jwks_min_refresh_s: float = Field(
        default=30.0,
        ge=0,
        description="Least time between two fetches of an issuer's keys (a token with an "
        "unknown key id triggers one: how a rotated key is picked up).",
    )
    oidc_http_timeout_s: float = Field(
        default=5.0, gt=0, description="Timeout of the requests to an issuer's JWKS/discovery."
    )

    @model_validator(mode="before")
    @classmethod
    def _password_into_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("database_password") and data.get("database_url"):
            data = {**data, "database_url": with_password(data["database_url"], data)}
        return data

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Self:
        """A SASL protocol without a user would fail on every connection, later and vaguer."""
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "kafka_sasl_username and kafka_sasl_password"
            )
        return self

    @classmethod
    def of(cls, settings: CommonSettings | None) -> Self:
        """A service's settings from the shared ones its caller passes; the service's own
        fields come from the environment (or their defaults)."""
        if isinstance(settings, cls):
            return settings
        if settings is None:
            return cls()
        return cls(**settings.model_dump(exclude_unset=True))

    @property
    def uses_kafka(self) -> bool:
        return bool(self.kafka_bootstrap_servers)


def with_password(url: str, data: dict[str, Any]) -> str:
    """``url`` with the password of ``data["database_password"]`` (a str or SecretStr)."""
    from sqlalchemy.engine import make_url

    password = data["database_password"]
    if isinstance(password, SecretStr):
        password = password.get_secret_value()
    return make_url(url).set(password=str(password)).render_as_string(hide_password=False)


@lru_cache(maxsize=1)
def get_settings() -> CommonSettings:
    return CommonSettings()
