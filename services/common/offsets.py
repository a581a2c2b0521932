"""Consumer offsets and dedup rows stored next to the data they guard.

The exactly-once pattern: a consumer applies a batch and, in the same transaction, claims the
events' ``(source, id)`` keys (:func:`claim_new` says which were new) and stores the next offsets
(:func:`store_offsets`). On start and on every partition assignment it seeks to
:func:`load_offsets`. Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import UtcDateTime, chunks, upsert

TopicPartition = tuple[str, int]
EventKey = tuple[str, str]


def offsets_table(metadata: MetaData) -> Table:
    """``consumer_offsets``: the next offset to read per consumer group and partition."""
    return Table(
        "consumer_offsets",
        metadata,
        Column("group_id", String(255), primary_key=True),
        Column("topic", String(255), primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("next_offset", BigInteger, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False, server_default=text("CURRENT_TIMESTAMP")),
    )


def dedup_table(
    metadata: MetaData, name: str = "processed_events", *, content_hash: bool = False
) -> Table:
    """Events already applied, by CloudEvents ``(source, id)``; ``seen_at`` allows pruning.

    With ``content_hash`` each key also keeps a hash of the event's content, so a key re-sent
    with other content can be told from a plain repeat (:func:`stored_hashes`)."""
    extra = [Column("content_hash", LargeBinary, nullable=True)] if content_hash else []
    return Table(
        name,
        metadata,
        Column("source", String, primary_key=True),
        Column("id", String, primary_key=True),
        Column("seen_at", UtcDateTime, nullable=False, server_default=text("CURRENT_TIMESTAMP")),
        *extra,
        Index(f"ix_{name}_seen_at", "seen_at"),
    )


async def load_offsets(
    session: AsyncSession, table: Table, group_id: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """Stored next offsets of ``partitions``; a partition never stored is absent."""
    wanted = set(partitions)
    if not wanted:
        return {}
    c = table.c
    rows = await session.execute(
        select(c.topic, c.partition, c.next_offset).where(
            c.group_id == group_id, c.topic.in_(sorted({topic for topic, _ in wanted}))
        )
    )
    return {
        (topic, partition): offset
        for topic, partition, offset in rows
        if (topic, partition) in wanted
    }


async def store_offsets(
    session: AsyncSession, table: Table, group_id: str, offsets: Mapping[TopicPartition, int]
) -> None:
    """Upsert the next offsets to read, in the caller's transaction."""
    if not offsets:
        return
    stmt = upsert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.group_id, table.c.topic, table.c.partition],
        set_={"next_offset": stmt.excluded.next_offset, "updated_at": func.now()},
    )
    rows = [
        {"group_id": group_id, "topic": topic, "partition": partition, "next_offset": offset}
        for (topic, partition), offset in offsets.items()
    ]
    for chunk in chunks(rows):
        await session.execute(stmt, chunk)


async def claim_new(
    session: AsyncSession,
    table: Table,
    keys: Sequence[EventKey],
    hashes: Mapping[EventKey, bytes] | None = None,
) -> set[EventKey]:
    """Record ``keys`` as processed and return those that were not already (each once).

    ``hashes`` (for a table made with ``content_hash``) are stored with the keys claimed.
    Concurrent claims of one key serialise on its primary key: after the first claimant commits,
    the other gets nothing; if the first rolls back, the other gets the key.
    """
    unique = list(dict.fromkeys(keys))
    if not unique:
        return set()
    c = table.c
    stmt = (
        upsert(session, table)
        .on_conflict_do_nothing(index_elements=[c.source, c.id])
        .returning(c.source, c.id)
    )
    rows: list[dict[str, Any]] = [{"source": source, "id": id_} for source, id_ in unique]
    if hashes is not None:
        for row, key in zip(rows, unique, strict=True):
            row["content_hash"] = hashes[key]
    claimed: set[EventKey] = set()
    for chunk in chunks(rows):
        result = await session.execute(stmt, chunk)
        claimed.update((source, id_) for source, id_ in result)
    return claimed


async def stored_hashes(
    session: AsyncSession, table: Table, keys: Sequence[EventKey]
) -> dict[EventKey, bytes | None]:
    """The content hashes kept with ``keys`` (None: kept before hashes were, or absent)."""
    c = table.c
    out: dict[EventKey, bytes | None] = {}
    for chunk in chunks(keys):
        result = await session.execute(
            select(c.source, c.id, c.content_hash).where(tuple_(c.source, c.id).in_(chunk))
        )
        out.update({(source, id_): content for source, id_, content in result})
    return out
