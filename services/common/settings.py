"""Settings shared by every service, from the environment or secret files.

Secrets (the pseudonym pepper, API keys) may also come from files: point ``SPM_SECRETS_DIR`` at
a directory with one file per setting (e.g. ``/run/secrets/pseudonym_pepper``), as Docker and
Kubernetes mount them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    kafka_client_id: str = "spm-monitor"
    kafka_request_timeout_ms: int = Field(default=10_000, ge=100)

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
    http_limit_concurrency: int = Field(
        default=1000,
        ge=1,
        description="Most connections + requests in progress per process (more: 503).",
    )

    institution_currency: str = Field(default="KES", pattern=r"^[A-Z]{3}$")
    institution_timezone: str = "UTC"

    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_namespace: str = "spm-monitor"

    pseudonym_pepper: SecretStr | None = Field(
        default=None, description="HMAC key for pseudonyms; required by the ingest service."
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="API keys as JSON: [{name, sha256, scopes, sources}] (hashes only).",
    )

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


@lru_cache(maxsize=1)
def get_settings() -> CommonSettings:
    return CommonSettings()
