"""Settings of the Fineract adapter (on top of the ingest service's)."""

from __future__ import annotations

from pydantic import Field

from services.ingest.config import IngestSettings
from services.ingest.fineract.mapping import DEFAULT_GENDER_MAP

SCHEMA = "ingest_fineract"


class FineractSettings(IngestSettings):
    fineract_enabled: bool = Field(
        default=False, description="Run the Fineract consumer inside the ingest service."
    )
    fineract_topic: str = Field(
        default="external-events", description="Fineract's external-events topic."
    )
    fineract_group_id: str = Field(
        default="spm-ingest-fineract", description="Consumer group (offsets live in our DB)."
    )
    fineract_db_schema: str = Field(
        default=SCHEMA, description="PostgreSQL schema of the adapter's tables."
    )
    fineract_topic_prefix: str = Field(
        default="", description="Prefix of the canonical and dead-letter topics written to."
    )
    fineract_transactional_id: str = Field(
        default="spm-ingest-fineract-relay",
        description="Kafka transactional id of the outbox relay; one relay per id at a time.",
    )
    fineract_park_timeout_s: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="How long an event waits for its unknown loan before it is dead-lettered.",
    )
    fineract_park_sweep_interval_s: float = Field(default=60.0, gt=0)
    fineract_deadletter_original: bool = Field(
        default=False,
        description="Put the original Fineract bytes (with personal data) on the dead-letter "
        "topic instead of a reference to topic/partition/offset.",
    )
    fineract_max_records: int = Field(default=500, ge=1, le=10_000)
    fineract_relay_batch: int = Field(default=1000, ge=1, le=50_000)
    fineract_gender_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_GENDER_MAP),
        description="Gender code-value name (lower case) -> female/male/other/unknown.",
    )
    fineract_hook_exit_types: dict[str, str] = Field(
        default_factory=lambda: {"CLOSE": "voluntary", "WITHDRAW": "voluntary"},
        description="Hook action -> exit_type of spm.client.exited.v1.",
    )
