"""The Fineract adapter's election lock on real PostgreSQL: never pooled with its lock."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_engine
from services.ingest.fineract.store import exclusive

HOLDER = text(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND objid = (hashtext(:k)::bigint & 4294967295)::oid"
)


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


@pytest.mark.postgres
async def test_the_lock_session_ends_after_a_failure(postgres_url: str, unique: str) -> None:
    """The holder failed: a standby wins the lock, and the holder's session is gone rather than
    back in its pool (a pooled session keeps its lock whenever the unlock did not run)."""
    mine, theirs = create_engine(postgres_url, "public"), create_engine(postgres_url, "public")
    key, stop = f"test-fineract-{unique}", asyncio.Event()
    try:
        with pytest.raises(RuntimeError, match="broker down"):
            async with exclusive(mine, key, stop) as active:
                assert active
                async with theirs.connect() as conn:
                    holder = await conn.scalar(HOLDER, {"k": key})
                raise RuntimeError("broker down")
        assert holder is not None
        assert await _pid(mine) != holder, "the lock's session went back to the pool"
        async with exclusive(theirs, key, stop) as active:
            assert active
    finally:
        await mine.dispose()
        await theirs.dispose()
