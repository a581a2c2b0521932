"""Database access of the ingest service: its dedup keys (claimed with
``services.common.offsets.claim_new``; unclaimed and purged here). The caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.offsets import EventKey
from services.ingest.models import ingested_events

DELETE_CHUNK = 1000


async def unclaim(session: AsyncSession, table: Table, keys: Sequence[EventKey]) -> None:
    """Delete the claims of ``keys`` (events Kafka did not take: a retry is accepted again)."""
    c = table.c
    for start in range(0, len(keys), DELETE_CHUNK):
        chunk = keys[start : start + DELETE_CHUNK]
        await session.execute(delete(table).where(tuple_(c.source, c.id).in_(chunk)))


async def purge_dedup(session: AsyncSession, retention: timedelta) -> int:
    """Forget dedup keys older than ``retention``; returns how many. The caller commits."""
    cutoff = datetime.now(UTC) - retention
    result = await session.execute(
        delete(ingested_events).where(ingested_events.c.seen_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)
