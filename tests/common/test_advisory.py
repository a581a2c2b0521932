"""Leadership locks on real PostgreSQL: a discarded lock connection frees its lock for another
instance, and a long wait for the lock is told at WARNING."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.advisory import LeadershipWait, discard
from services.common.db import create_engine


@pytest.fixture
async def engines(postgres_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two instances' engines (two pools) on the shared database."""
    one, two = create_engine(postgres_url, "public"), create_engine(postgres_url, "public")
    yield one, two
    await one.dispose()
    await two.dispose()


async def _try_lock(conn: AsyncConnection, key: str) -> bool:
    got = await conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key})
    await conn.commit()
    return bool(got)


async def _backend(conn: AsyncConnection) -> int:
    pid = await conn.scalar(text("SELECT pg_backend_pid()"))
    await conn.commit()
    return int(pid)


@pytest.mark.postgres
@pytest.mark.parametrize("unlock_first", [True, False])
async def test_a_discarded_lock_connection_frees_the_lock(
    engines: tuple[AsyncEngine, AsyncEngine], unique: str, unlock_first: bool
) -> None:
    """Closed the ordinary way, the connection goes back to the pool with its session and the
    session's lock; discarded, its session ends (with or without the explicit unlock) and
    another instance wins the lock."""
    mine, theirs = engines
    key = f"test-advisory-{unique}"
    conn = await mine.connect()
    assert await _try_lock(conn, key)
    leader = await _backend(conn)
    await discard(conn, key if unlock_first else None)
    await conn.close()
    async with mine.connect() as again:
        assert await _backend(again) != leader, "the lock's session went back to the pool"
    async with theirs.connect() as other:
        deadline = asyncio.get_running_loop().time() + 10
        while not await _try_lock(other, key):  # without the unlock: once the session has ended
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the discarded connection's lock is still held")
            await asyncio.sleep(0.02)
        await discard(other, key)


def test_a_long_wait_for_leadership_is_told(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    wait = LeadershipWait("test relay", patience_s=300, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="services.common.advisory")

    def lost_at(t: float) -> list[str]:
        now[0] = t
        caplog.clear()
        wait.lost()
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    assert lost_at(0) == [] and lost_at(299) == []  # a standby's ordinary wait is quiet
    assert lost_at(301) == [
        "test relay: waiting 301 s for leadership; another session holds the lock"
        " (if no other instance runs, a stuck one: see pg_locks)"
    ]
    assert lost_at(600) == []  # then again only once the wait has doubled
    assert len(lost_at(602)) == 1
    assert wait.warned == 2
    now[0] = 700
    caplog.clear()
    wait.won()
    assert [r.getMessage() for r in caplog.records] == ["test relay: leader after waiting 700 s"]
    assert lost_at(1000) == [] and lost_at(1299) == []  # a new wait starts afresh
    assert len(lost_at(1300)) == 1
