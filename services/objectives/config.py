"""Settings of the objectives service."""

from __future__ import annotations

import dataclasses
import re

from pydantic import Field, field_validator

from contracts.topics import OBJECTIVES, TopicSpec
from services.common.settings import CommonSettings

DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+")


class ObjectivesSettings(CommonSettings):
    objectives_db_schema: str = Field(
        default="objectives", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="PostgreSQL schema."
    )
    objectives_topic: str = Field(
        default=OBJECTIVES.name, description="Topic of target states (tests use their own)."
    )
    objectives_source: str = Field(
        default="spm:objectives", description="CloudEvents source of the events published."
    )
    objectives_recipient_domains: list[str] = Field(
        default_factory=list,
        description="E-mail domains a target's notify may name, as a JSON list, e.g. "
        '["example-mfi.co.ke"] (exact domains, case-insensitive). Empty: any domain — set it '
        "in production, or any objectives writer can have alerts mailed anywhere.",
    )
    outbox_batch_size: int = Field(default=100, ge=1, le=10_000)
    outbox_poll_interval_s: float = Field(default=1.0, gt=0)

    @field_validator("objectives_recipient_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        domains = [d.strip().lower() for d in value]
        bad = [d for d in domains if not DOMAIN.fullmatch(d)]
        if bad:
            raise ValueError(f"not domain names: {bad}")
        return domains

    @property
    def topic_spec(self) -> TopicSpec:
        return dataclasses.replace(OBJECTIVES, name=self.objectives_topic)
