from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, select
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


async def test_concurrent_claims_of_one_key_yield_it_once(db: Db) -> None:
    async with db.sessions() as first, db.sessions() as second:
        await first.begin()
        assert await claim_new(first, db.dedup, [("src", "k")]) == {("src", "k")}

        async def claim_second() -> set[tuple[str, str]]:
            async with second.begin():
                return await claim_new(second, db.dedup, [("src", "k"), ("src", "other")])

        waiting = asyncio.create_task(claim_second())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # blocked on the first claimant's uncommitted row
        await first.commit()
        assert await waiting == {("src", "other")}
