"""Database access of the engine: load a unit's facts, and write one batch in the caller's
transaction (facts, deltas, resolutions, seen values, watermarks) with a compare-and-set on the
consumer offsets so that an instance that lost its partitions (a zombie) cannot write.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import asyncpg
from sqlalchemy import case, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import offsets
from services.common.db import chunks, upsert
from services.indicators import models as m
from services.indicators.errors import ClaimRace, StaleOwnership

TP = tuple[str, int]


class _Columns:
    """Rows of a batch, column by column, one list per dataclass field in column order
    (PostgreSQL takes each column as one array)."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)

    def records(self) -> Iterator[tuple[Any, ...]]:
        return zip(*(getattr(self, name) for name in self.names()), strict=True)

    def rows(self) -> list[dict[str, Any]]:
        names = self.names()
        return [dict(zip(names, row, strict=True)) for row in self.records()]


@dataclass(slots=True)
class FactColumns(_Columns):
    """Facts of a batch."""

    unit: list[int] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DeltaColumns(_Columns):
    """Delta rows of a batch."""

    unit: list[int] = field(default_factory=list)
    component: list[str] = field(default_factory=list)
    set_id: list[int] = field(default_factory=list)
    day: list[int] = field(default_factory=list)
    value: list[int] = field(default_factory=list)


async def ensure_offsets(session: AsyncSession, group_id: str, tps: Iterable[TP]) -> None:
    """Create missing offset rows (next offset 0) so that every later batch can lock them."""
    rows = [{"group_id": group_id, "topic": t, "partition": p, "next_offset": 0} for t, p in tps]
    if rows:
        stmt = upsert(session, m.consumer_offsets).on_conflict_do_nothing()
        await session.execute(stmt, rows)


async def read_offsets(
    session: AsyncSession, group_id: str, tps: Iterable[TP], *, lock: bool = False
) -> dict[TP, int]:
    wanted = set(tps)
    c = m.consumer_offsets.c
    query = select(c.topic, c.partition, c.next_offset).where(
        c.group_id == group_id, c.topic.in_({t for t, _ in wanted})
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    rows = await session.execute(query)
    return {(t, p): o for t, p, o in rows if (t, p) in wanted}


async def check_and_store_offsets(
    session: AsyncSession, group_id: str, expected: Mapping[TP, int], new: Mapping[TP, int]
) -> None:
    """Lock the unit's offset rows, abort unless they still hold what we loaded, then advance.

    On PostgreSQL one compare-and-set UPDATE does it all (its row locks serialise instances; a
    row that moved is not updated, and fewer updated rows than expected aborts)."""
    schema = _pg_schema(session)
    if schema is not None:
        tps = sorted(expected)
        rows = await session.execute(
            text(
                f'UPDATE "{schema}".consumer_offsets AS o '  # noqa: S608
                "SET next_offset = v.new, updated_at = now() "
                "FROM unnest(CAST(:t AS text[]), CAST(:p AS integer[]), "
                "CAST(:e AS bigint[]), CAST(:n AS bigint[])) AS v(topic, partition, expected, new) "
                "WHERE o.group_id = :g AND o.topic = v.topic AND o.partition = v.partition "
                "AND o.next_offset = v.expected RETURNING o.topic"
            ),
            {
                "g": group_id,
                "t": [t for t, _ in tps],
                "p": [p for _, p in tps],
                "e": [expected[tp] for tp in tps],
                "n": [new[tp] for tp in tps],
            },
        )
        if len(rows.all()) != len(tps):
            raise StaleOwnership(f"stored offsets moved: expected {dict(expected)}")
        return
    stored = await read_offsets(session, group_id, expected, lock=True)
    if stored != dict(expected):
        raise StaleOwnership(f"stored offsets moved: expected {expected}, found {stored}")
    c = m.consumer_offsets.c
    for (topic, partition), offset in new.items():
        await session.execute(
            update(m.consumer_offsets)
            .where(c.group_id == group_id, c.topic == topic, c.partition == partition)
            .values(next_offset=offset, updated_at=_now())
        )


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def stream_facts(
    session: AsyncSession, unit: int, chunk: int = 2000
) -> AsyncIterator[list[tuple[int, str, str]]]:
    """A unit's facts in arrival order, in chunks (a large state never sits in memory twice)."""
    c = m.facts.c
    result = await session.stream(
        select(c.kind, c.source, c.body).where(c.unit == unit).order_by(c.seq),
        execution_options={"yield_per": chunk},
    )
    async for rows in result.partitions(chunk):
        yield [(k, s, b) for k, s, b in rows]


def set_id(segments: tuple[str, ...]) -> int:
    """A stable 63-bit id of a segment set (the same in every instance and run)."""
    digest = hashlib.blake2b("\x1f".join(segments).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


async def load_set_ids(session: AsyncSession) -> set[int]:
    return set((await session.execute(select(m.segment_sets.c.set_id).distinct())).scalars())


async def add_segment_sets(session: AsyncSession, sets: dict[int, tuple[str, ...]]) -> None:
    rows = [{"set_id": i, "segment": seg} for i, segs in sorted(sets.items()) for seg in segs]
    if rows:
        await session.execute(upsert(session, m.segment_sets).on_conflict_do_nothing(), rows)


async def load_seen(session: AsyncSession) -> set[tuple[str, str]]:
    rows = await session.execute(select(m.seen_values.c.dimension, m.seen_values.c.value))
    return {(d, v) for d, v in rows}


def _pg_schema(session: AsyncSession) -> str | None:
    """The schema the tables live in on PostgreSQL (after the schema translation), else None."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    mapping = bind.get_execution_options().get("schema_translate_map") or {}
    return str(mapping.get(m.SCHEMA, m.SCHEMA))


async def known_keys(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of ``keys`` are claimed already (committed claims only)."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return set()
    schema = _pg_schema(session)
    if schema is not None:
        rows = await session.execute(
            text(
                f'SELECT p.source, p.id FROM "{schema}".processed_events AS p '  # noqa: S608
                "JOIN unnest(CAST(:s AS text[]), CAST(:i AS text[])) AS k(source, id) "
                "ON p.source = k.source AND p.id = k.id"
            ),
            {"s": [k[0] for k in unique], "i": [k[1] for k in unique]},
        )
        return {(source, id_) for source, id_ in rows}
    c = m.processed_events.c
    found: set[tuple[str, str]] = set()
    for chunk in chunks(unique, 400):
        rows = await session.execute(
            select(c.source, c.id).where(tuple_(c.source, c.id).in_(list(chunk)))
        )
        found.update((source, id_) for source, id_ in rows)
    return found


async def claim_exactly(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> None:
    """Claim ``keys`` (distinct, none known as claimed when the batch was computed); raises
    :class:`ClaimRace` if another instance claimed one meanwhile, so the batch rolls back."""
    if not keys:
        return
    claimed = len(await offsets.claim_new(session, m.processed_events, keys))
    if claimed != len(keys):
        raise ClaimRace(f"{len(keys) - claimed} of {len(keys)} events were claimed meanwhile")


async def write_batch(
    session: AsyncSession,
    claims: Sequence[tuple[str, str]],
    facts: FactColumns,
    deltas: DeltaColumns,
    marks: Mapping[int, int],
) -> None:
    """Claim, facts, deltas and watermarks of one batch. On PostgreSQL every row goes in by
    binary ``COPY``: the server's time per row is a third to four fifths of ``INSERT … SELECT
    unnest`` (claims, facts; deltas through a staging table), and the writes were the
    engine's bottleneck. Elsewhere one statement each. Must follow another statement of the
    transaction (see :func:`_copy`)."""
    schema = _pg_schema(session)
    if schema is None:  # SQLite (the embedded mode)
        await claim_exactly(session, claims)
        await write_facts(session, facts.rows())
        await add_deltas(session, deltas.rows())
        await raise_watermarks(session, marks)
        return
    try:
        await _copy(session, schema, "processed_events", ("source", "id"), claims)
    except asyncpg.UniqueViolationError as exc:  # claims are new when computed: a race
        raise ClaimRace("an event of the batch was claimed meanwhile") from exc
    await _copy(session, schema, "facts", facts.names(), facts.records())
    # deltas are upserts, which COPY cannot do: they go through a staging table (per connection)
    await session.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS delta_stage (unit integer, component text, "
            "set_id bigint, day integer, value bigint) ON COMMIT DELETE ROWS"
        )
    )
    await _copy(session, "pg_temp", "delta_stage", deltas.names(), deltas.records())
    q = f'"{schema}"'
    await session.execute(
        text(
            f"WITH d AS (INSERT INTO {q}.deltas AS d (unit, component, set_id, day, value) "  # noqa: S608
            "SELECT * FROM pg_temp.delta_stage ORDER BY unit, component, set_id, day "  # key order
            "ON CONFLICT (unit, component, set_id, day) "
            "DO UPDATE SET value = d.value + excluded.value) "
            f"INSERT INTO {q}.watermarks AS w (unit, max_day) "
            "SELECT * FROM unnest(CAST(:wu AS integer[]), CAST(:wd AS integer[])) "
            "ON CONFLICT (unit) DO UPDATE SET max_day = GREATEST(w.max_day, excluded.max_day)"
        ),
        {"wu": list(marks), "wd": list(marks.values())},
    )


async def _copy(
    session: AsyncSession,
    schema: str,
    table: str,
    columns: Sequence[str],
    records: Iterable[Sequence[Any]],
) -> None:
    """Binary ``COPY`` of rows into a table, in the session's transaction (asyncpg's own call,
    as SQLAlchemy has none). SQLAlchemy's asyncpg adapter opens the transaction lazily, at the
    first statement: a ``COPY`` before any would commit on its own, so that is refused."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("COPY outside a transaction")
    await driver.copy_records_to_table(
        table, schema_name=schema, columns=list(columns), records=records
    )


async def write_facts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    for chunk in chunks(rows):
        await session.execute(m.facts.insert(), list(chunk))


async def add_deltas(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Upsert-add ``value`` into (unit, component, segment set, day)."""
    stmt = upsert(session, m.deltas)
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.deltas.c.unit, m.deltas.c.component, m.deltas.c.set_id, m.deltas.c.day],
        set_={"value": m.deltas.c.value + stmt.excluded.value},
    )
    for chunk in chunks(rows):
        await session.execute(stmt, list(chunk))


async def set_resolutions(
    session: AsyncSession, upserts: list[dict[str, Any]], deletes: list[tuple[int, str, str]]
) -> None:
    c = m.resolutions.c
    for unit, source, cid in deletes:
        await session.execute(
            m.resolutions.delete().where(c.unit == unit, c.source == source, c.complaint_id == cid)
        )
    if upserts:
        stmt = upsert(session, m.resolutions)
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.unit, c.source, c.complaint_id],
            set_={
                "branch": stmt.excluded.branch,
                "resolved_day": stmt.excluded.resolved_day,
                "micros": stmt.excluded.micros,
            },
        )
        for chunk in chunks(upserts):
            await session.execute(stmt, list(chunk))


async def add_seen(session: AsyncSession, values: Iterable[tuple[str, str]]) -> None:
    rows = [{"dimension": d, "value": v} for d, v in sorted(values)]
    if rows:
        await session.execute(upsert(session, m.seen_values).on_conflict_do_nothing(), rows)


async def raise_watermarks(session: AsyncSession, marks: Mapping[int, int]) -> None:
    if not marks:
        return
    stmt = upsert(session, m.watermarks)
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.watermarks.c.unit],
        set_={
            "max_day": case(
                (stmt.excluded.max_day > m.watermarks.c.max_day, stmt.excluded.max_day),
                else_=m.watermarks.c.max_day,
            )
        },
    )
    await session.execute(stmt, [{"unit": u, "max_day": d} for u, d in sorted(marks.items())])


async def raise_tick(session: AsyncSession, day: int) -> None:
    """Advance the daily tick's date (never backwards)."""
    stmt = upsert(session, m.clock)
    stmt = stmt.on_conflict_do_update(
        index_elements=[m.clock.c.name],
        set_={
            "day": case((stmt.excluded.day > m.clock.c.day, stmt.excluded.day), else_=m.clock.c.day)
        },
    )
    await session.execute(stmt, [{"name": "tick", "day": day}])


async def pin_parameters(
    session: AsyncSession, wanted: Mapping[str, str], before: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Record the parameters not recorded yet; return every recorded one. On a schema that has
    recorded parameters already, a name in ``before`` is recorded with that value instead (the
    value it had implicitly when the stored aggregates were computed)."""
    c = m.parameters.c
    used = (await session.execute(select(c.name).limit(1))).first() is not None
    rows = [
        {"name": k, "value": before[k] if used and before and k in before else v}
        for k, v in wanted.items()
    ]
    await session.execute(upsert(session, m.parameters).on_conflict_do_nothing(), rows)
    recorded = await session.execute(select(c.name, c.value))
    return {row.name: row.value for row in recorded}
