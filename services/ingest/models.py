"""Tables of the ingest service (PostgreSQL schema ``ingest``; SQLite maps the schema away)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import MetaData, delete
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.offsets import dedup_table
from services.ingest.config import SCHEMA

metadata = MetaData(schema=SCHEMA)

ingested_events = dedup_table(metadata, "ingested_events", content_hash=True)
"""Every (source, id) published with a hash of its content, so a repeat within the retention is
reported as a duplicate, and the same id with other content as a conflict."""


async def purge_dedup(session: AsyncSession, retention: timedelta) -> int:
    """Forget dedup keys older than ``retention``; returns how many. The caller commits."""
    cutoff = datetime.now(UTC) - retention
    result = await session.execute(
        delete(ingested_events).where(ingested_events.c.seen_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)
