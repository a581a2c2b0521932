"""Settings of the objectives service."""

from __future__ import annotations

import dataclasses

from pydantic import Field

from contracts.topics import OBJECTIVES, TopicSpec
from services.common.settings import CommonSettings


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
    outbox_batch_size: int = Field(default=100, ge=1, le=10_000)
    outbox_poll_interval_s: float = Field(default=1.0, gt=0)

    @property
    def topic_spec(self) -> TopicSpec:
        return dataclasses.replace(OBJECTIVES, name=self.objectives_topic)
