from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.common.db import create_engine, migrate, session_factory
from services.common.offsets import (
    claim_new,
    dedup_table,
    load_offsets,
    offsets_table,
    store_offsets,
)


@dataclass
class Db:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    offsets: Table
    dedup: Table


@pytest.fixture
async def db(db_url: str, db_schema: str, sample_migrations: Path) -> AsyncIterator[Db]:
    await migrate(db_url, db_schema, sample_migrations)
    metadata = MetaData(schema=db_schema)
    engine = create_engine(db_url, db_schema)
    yield Db(engine, session_factory(engine), offsets_table(metadata), dedup_table(metadata))
    await engine.dispose()


async def test_offsets_round_trip(db: Db) -> None:
    async with db.sessions.begin() as session:
        await store_offsets(session, db.offsets, "g", {("spm.loans.v1", 0): 10, ("t", 1): 7})

    async with db.sessions() as session:
        loaded = await load_offsets(
            session, db.offsets, "g", [("spm.loans.v1", 0), ("t", 1), ("t", 2), ("other", 0)]
        )
        assert loaded == {("spm.loans.v1", 0): 10, ("t", 1): 7}
        assert await load_offsets(session, db.offsets, "g", []) == {}
        assert await load_offsets(session, db.offsets, "another-group", [("t", 1)]) == {}
        stamp = (await session.execute(select(db.offsets.c.updated_at))).scalars().first()
    assert isinstance(stamp, datetime)
    assert stamp.tzinfo is not None


async def test_store_offsets_upserts(db: Db) -> None:
    async with db.sessions.begin() as session:
        await store_offsets(session, db.offsets, "g", {("t", 0): 10, ("t", 1): 20})
        await store_offsets(session, db.offsets, "h", {("t", 0): 99})
    async with db.sessions.begin() as session:
        await store_offsets(session, db.offsets, "g", {("t", 0): 15, ("t", 2): 1})
        await store_offsets(session, db.offsets, "g", {})

    async with db.sessions() as session:
        partitions = [("t", p) for p in range(3)]
        assert await load_offsets(session, db.offsets, "g", partitions) == {
            ("t", 0): 15,
            ("t", 1): 20,
            ("t", 2): 1,
        }
        assert await load_offsets(session, db.offsets, "h", partitions) == {("t", 0): 99}


async def test_many_partitions_in_one_call(db: Db) -> None:
    offsets = {(f"topic-{p % 3}", p): p * 10 for p in range(2500)}
    async with db.sessions.begin() as session:
        await store_offsets(session, db.offsets, "g", offsets)
    async with db.sessions() as session:
        assert await load_offsets(session, db.offsets, "g", offsets) == offsets


async def test_rolled_back_transaction_stores_nothing(db: Db) -> None:
    with pytest.raises(RuntimeError, match="crash"):
        async with db.sessions.begin() as session:
            await store_offsets(session, db.offsets, "g", {("t", 0): 10})
            assert await claim_new(session, db.dedup, [("src", "1")]) == {("src", "1")}
            raise RuntimeError("crash before commit")

    async with db.sessions() as session:
        assert await load_offsets(session, db.offsets, "g", [("t", 0)]) == {}
        assert await claim_new(session, db.dedup, [("src", "1")]) == {("src", "1")}


async def test_claim_new_within_one_batch_and_across_batches(db: Db) -> None:
    async with db.sessions.begin() as session:
        first = await claim_new(
            session, db.dedup, [("a", "1"), ("a", "2"), ("a", "1"), ("b", "1"), ("a", "2")]
        )
        assert first == {("a", "1"), ("a", "2"), ("b", "1")}
        assert await claim_new(session, db.dedup, [("a", "1")]) == set()
        assert await claim_new(session, db.dedup, []) == set()

    async with db.sessions.begin() as session:
        again = await claim_new(session, db.dedup, [("b", "1"), ("b", "2"), ("c", "1")])
    assert again == {("b", "2"), ("c", "1")}


async def test_claim_new_with_more_than_ten_thousand_keys(db: Db) -> None:
    earlier = [("fineract", f"evt-{n}") for n in range(0, 12_000, 3)]
    batch = [("fineract", f"evt-{n}") for n in range(12_000)] + earlier  # repeats inside too
    async with db.sessions.begin() as session:
        assert await claim_new(session, db.dedup, earlier) == set(earlier)
    async with db.sessions.begin() as session:
        claimed = await claim_new(session, db.dedup, batch)
    assert claimed == set(batch) - set(earlier)
    assert len(claimed) == 8_000
    async with db.sessions() as session:
        seen = (await session.execute(select(db.dedup.c.seen_at).limit(1))).scalar_one()
    assert seen.tzinfo is not None


async def _waits_on_a_lock(db: Db, pid: int, limit_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    query = text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
    while True:
        async with db.engine.connect() as conn:
            if (await conn.execute(query, {"pid": pid})).scalar_one_or_none() == "Lock":
                return
        assert loop.time() < deadline, "the second claim never waited on the first one's lock"
        await asyncio.sleep(0.05)


async def test_concurrent_claims_of_one_key_yield_it_once(db: Db) -> None:
    async with db.sessions() as first, db.sessions() as second:
        await first.begin()
        assert await claim_new(first, db.dedup, [("src", "k")]) == {("src", "k")}

        sent = asyncio.Event()  # the second claimant's first statement (BEGIN on SQLite)
        backend: list[int] = []
        pid_known = asyncio.Event()

        def on_execute(*_: object) -> None:
            sent.set()

        async def claim_second() -> set[tuple[str, str]]:
            async with second.begin():
                if second.get_bind().dialect.name == "postgresql":
                    pid = await second.execute(text("SELECT pg_backend_pid()"))
                    backend.append(pid.scalar_one())
                    pid_known.set()
                return await claim_new(second, db.dedup, [("src", "k"), ("src", "other")])

        event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
        try:
            waiting = asyncio.create_task(claim_second())
            await asyncio.wait_for(sent.wait(), 30)  # the second claim reached the database
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", on_execute)
        if db.engine.dialect.name == "postgresql":  # it shows waiting on the first one's lock
            await asyncio.wait_for(pid_known.wait(), 30)
            await _waits_on_a_lock(db, backend[0])
        assert not waiting.done()  # blocked on the first claimant's uncommitted row
        await first.commit()
        assert await waiting == {("src", "other")}
