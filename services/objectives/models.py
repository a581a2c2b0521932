"""Tables of the objectives service (schema ``objectives``; tests translate it to their own)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.common.db import UtcDateTime
from services.common.outbox import outbox_table

SCHEMA = "objectives"
metadata = MetaData(schema=SCHEMA)

objectives = Table(
    "objectives",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("seq", Integer, nullable=False, unique=True),  # creation order, kept by exports
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("dimension", String(4), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("rationale", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

targets = Table(
    "targets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("objective_id", String(36), ForeignKey(objectives.c.id), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # retired = removed from its objective
    Column("indicator", String(100), nullable=False),
    Column("segment", String(200), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("threshold", JSON, nullable=False),  # decimal strings: [t] or [low, high]
    Column("warning_threshold", JSON, nullable=True),
    Column("for_days", Integer, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("notify", JSON, nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("effective_to", Date, nullable=True),
    Column("rationale", Text, nullable=True),
    Index("ix_targets_indicator_segment", "indicator", "segment"),
    Index("ix_targets_objective", "objective_id"),
)

versions = Table(
    "objective_versions",
    metadata,
    Column("objective_id", String(36), ForeignKey(objectives.c.id), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("action", String(16), nullable=False),
    Column("author", String(200), nullable=False),
    # the person's stable identifier (NULL for a machine's key); ``author`` is their display name
    Column("author_subject", String(200), nullable=True),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=False),
    Column("diff", JSON, nullable=False),
)
"""Append-only audit trail (PostgreSQL refuses UPDATE and DELETE with a trigger)."""

outbox = outbox_table(metadata)
