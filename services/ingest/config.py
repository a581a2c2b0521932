"""Settings of the ingest service (on top of the shared ones)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings

SCHEMA = "ingest"
MIB = 1024 * 1024


class IngestSettings(CommonSettings):
    ingest_db_schema: str = Field(
        default=SCHEMA,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema of ingest's tables (tests use one per run).",
    )
    ingest_max_batch_events: int = Field(
        default=5_000, ge=1, description="Most events in one batch request (more: 413)."
    )
    ingest_max_body_bytes: int = Field(
        default=10 * MIB,
        ge=1024,
        description="Largest body of a batch request (`/v1/events/batch`) in bytes (more: 413); "
        "the other routes have HTTP_MAX_BODY_BYTES.",
    )
    ingest_rate_limit: str = Field(
        default="200/second",
        description="Requests per API key and process, in the `limits` notation "
        "(`100/second;3000/minute`); over it: 429 + Retry-After.",
    )
    ingest_dedup_retention_days: int = Field(
        default=30, ge=1, description="How long a (source, id) is remembered for dedup."
    )
    ingest_dedup_purge_interval_s: float = Field(default=3600.0, gt=0)
    ingest_publish_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long a request waits for Kafka's acks before answering 503.",
    )
    ingest_min_business_date: date = Field(
        default=date(1970, 1, 1), description="Dates and times before this are rejected."
    )
    ingest_max_future_days: int = Field(
        default=1, ge=0, description="How far past today (UTC) a date or time may lie (clocks)."
    )
    ingest_crm_mapping: Path | None = Field(
        default=None,
        description="YAML field mapping of the CRM complaints webhook "
        "(default: the shipped Salesforce Case mapping).",
    )
    ingest_crm_source: str = Field(
        default="crm:salesforce", description="CloudEvents source of CRM webhook events."
    )
    ingest_topic_suffix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,100}$",
        description="Appended to every topic ingest publishes to (HTTP, CSV and CRM events, "
        "dead letters), e.g. `-t1`: lets tests isolate runs on a shared broker, with "
        "`INDICATORS_TOPIC_SUFFIX` set alike. The Fineract adapter has `FINERACT_TOPIC_PREFIX`.",
    )


@lru_cache(maxsize=1)
def get_ingest_settings() -> IngestSettings:
    return IngestSettings()
