"""Database access of the Fineract adapter; nothing here commits (the caller owns the txn)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.common.advisory import LeadershipWait, discard, try_lock
from services.common.aio import wait_event
from services.common.bus import Message
from services.common.db import is_sqlite, migrate_service, open_service_engine, upsert
from services.ingest.fineract import models as m
from services.ingest.fineract.config import SCHEMA, FineractSettings
from services.ingest.fineract.mapping import LoanInfo

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_POLL_S = 2.0
AggregateKey = tuple[str, str, int]


async def migrate_db(settings: FineractSettings) -> None:
    await migrate_service(settings.database_url, settings.fineract_db_schema, MIGRATIONS_DIR)


def open_engine(settings: FineractSettings) -> AsyncEngine:
    return open_service_engine(settings.database_url, settings.fineract_db_schema, SCHEMA)


@asynccontextmanager
async def exclusive(engine: AsyncEngine, key: str, stop: asyncio.Event) -> AsyncIterator[bool]:
    """Hold a PostgreSQL advisory lock while inside (one active consumer and relay per key; a
    second instance waits as a standby). Yields False if ``stop`` came first. The lock dies
    with the connection, so a killed holder releases it at once; the connection is discarded
    after, never pooled with the lock (see :mod:`services.common.advisory`). SQLite: a single
    process."""
    if is_sqlite(engine):
        yield True
        return
    waiting = LeadershipWait(f"fineract consumer ({key})")
    held = False
    async with engine.connect() as conn:
        try:
            while True:
                held = await try_lock(conn, key)
                if held:
                    break
                waiting.lost()
                if not await wait_event(stop, LOCK_POLL_S):
                    continue
                yield False
                return
            waiting.won()
            yield True
        finally:
            await discard(conn, key if held else None)


async def purge_messages(session: AsyncSession, retention: timedelta) -> int:
    """Forget applied (tenant, idempotencyKey) pairs older than ``retention``."""
    cutoff = datetime.now(UTC) - retention
    result = await session.execute(delete(m.messages).where(m.messages.c.seen_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


# --- loans ---------------------------------------------------------------------------------------


async def load_loans(session: AsyncSession, tenant: str, ids: Iterable[int]) -> dict[int, LoanInfo]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    c = m.loans.c
    rows = await session.execute(
        select(
            c.loan_id,
            c.client_id,
            c.branch_id,
            c.product_id,
            c.currency,
            c.loan_cycle,
            c.disbursals,
        ).where(c.tenant == tenant, c.loan_id.in_(wanted))
    )
    return {
        r.loan_id: LoanInfo(
            r.client_id,
            r.branch_id,
            r.product_id,
            r.currency,
            r.loan_cycle,
            tuple(r.disbursals or ()),
        )
        for r in rows
    }


async def upsert_loans(session: AsyncSession, tenant: str, loans: Mapping[int, LoanInfo]) -> None:
    if not loans:
        return
    stmt = upsert(session, m.loans)
    fields = ("client_id", "branch_id", "product_id", "currency", "loan_cycle", "disbursals")
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.loans.c.tenant, m.loans.c.loan_id],
        set_={
            **{f: getattr(stmt.excluded, f) for f in fields},
            "updated_at": stmt.excluded.updated_at,
        },
    )
    now = datetime.now().astimezone()
    await session.execute(
        stmt,
        [
            {
                "tenant": tenant,
                "loan_id": loan_id,
                "client_id": info.client_id,
                "branch_id": info.branch_id,
                "product_id": info.product_id,
                "currency": info.currency,
                "loan_cycle": info.loan_cycle,
                "disbursals": list(info.disbursals),
                "updated_at": now,
            }
            for loan_id, info in loans.items()
        ],
    )


# --- per-aggregate ordering ----------------------------------------------------------------------


async def load_high_water(
    session: AsyncSession, keys: Iterable[AggregateKey]
) -> dict[AggregateKey, int]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    c = m.aggregates.c
    rows = await session.execute(
        select(c.tenant, c.kind, c.aggregate_id, c.last_envelope_id).where(
            tuple_(c.tenant, c.kind, c.aggregate_id).in_(wanted)
        )
    )
    return {(r.tenant, r.kind, r.aggregate_id): r.last_envelope_id for r in rows}


async def store_high_water(session: AsyncSession, marks: Mapping[AggregateKey, int]) -> None:
    if not marks:
        return
    stmt = upsert(session, m.aggregates)
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.aggregates.c.tenant, m.aggregates.c.kind, m.aggregates.c.aggregate_id],
        set_={"last_envelope_id": stmt.excluded.last_envelope_id},
    )
    await session.execute(
        stmt,
        [
            {"tenant": t, "kind": k, "aggregate_id": a, "last_envelope_id": last}
            for (t, k, a), last in marks.items()
        ],
    )


# --- parked events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    seq: int
    tenant: str
    loan_id: int
    item_index: int
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    parked_at: datetime


async def park(session: AsyncSession, event: ParkedEvent) -> None:
    row = {k: getattr(event, k) for k in ParkedEvent.__slots__ if k != "seq"}
    await session.execute(m.parked.insert().values(**row))


def _parked(rows: Iterable[Any]) -> list[ParkedEvent]:
    return [ParkedEvent(**dict(r._mapping)) for r in rows]


async def take_parked(
    session: AsyncSession, tenant: str, loan_ids: Iterable[int]
) -> list[ParkedEvent]:
    """Remove and return the events waiting for these loans, oldest first."""
    wanted = sorted(set(loan_ids))
    if not wanted:
        return []
    c = m.parked.c
    where = and_(c.tenant == tenant, c.loan_id.in_(wanted))
    rows = await session.execute(select(m.parked).where(where).order_by(c.seq))
    taken = _parked(rows)
    if taken:
        await session.execute(delete(m.parked).where(c.seq.in_([p.seq for p in taken])))
    return taken


async def take_expired(session: AsyncSession, cutoff: datetime, limit: int) -> list[ParkedEvent]:
    c = m.parked.c
    rows = await session.execute(
        select(m.parked).where(c.parked_at < cutoff).order_by(c.seq).limit(limit)
    )
    taken = _parked(rows)
    if taken:
        await session.execute(delete(m.parked).where(c.seq.in_([p.seq for p in taken])))
    return taken


# --- outbox --------------------------------------------------------------------------------------


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> list[list[str]]:
    return [[name, base64.b64encode(value).decode()] for name, value in headers]


def decode_headers(raw: Sequence[Sequence[str]]) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, base64.b64decode(value)) for name, value in raw)


async def append_outbox(session: AsyncSession, messages: Sequence[Message]) -> None:
    """Append in order. Taking ``next_seq`` locks its row, so writers never interleave and the
    relay never sees a gap that a slower transaction fills later."""
    if not messages:
        return
    c = m.relay_state.c
    result = await session.execute(
        update(m.relay_state)
        .where(c.name == "next_seq")
        .values(value=c.value + len(messages))
        .returning(c.value)
    )
    first = int(result.scalar_one()) - len(messages)
    await session.execute(
        m.outbox.insert(),
        [
            {
                "seq": first + i,
                "topic": msg.topic,
                "key": msg.key,
                "value": msg.value,
                "headers": encode_headers(msg.headers),
            }
            for i, msg in enumerate(messages)
        ],
    )


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    message: Message


async def pending_outbox(session: AsyncSession, from_seq: int, limit: int) -> list[OutboxRow]:
    c = m.outbox.c
    rows = await session.execute(
        select(c.seq, c.topic, c.key, c.value, c.headers)
        .where(c.seq >= from_seq)
        .order_by(c.seq)
        .limit(limit)
    )
    return [
        OutboxRow(r.seq, Message(r.topic, r.value, r.key, decode_headers(r.headers))) for r in rows
    ]


async def relayed(session: AsyncSession) -> int:
    c = m.relay_state.c
    value = await session.scalar(select(c.value).where(c.name == "relayed"))
    return int(value or 1)


async def mark_relayed(session: AsyncSession, next_seq: int) -> None:
    """Progress of the relay; rows below it are published and can go."""
    c = m.relay_state.c
    await session.execute(
        update(m.relay_state).where(c.name == "relayed", c.value < next_seq).values(value=next_seq)
    )
    await session.execute(delete(m.outbox).where(m.outbox.c.seq < next_seq))
