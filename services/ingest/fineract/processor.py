"""One batch of Fineract records -> outbox rows, inside the caller's database transaction.

Per record: decode (bad bytes -> dead letter), drop a message already applied (tenant +
``idempotencyKey``), drop to the dead-letter topic a message older than what its aggregate has
seen (ordering per aggregate by envelope ``id``), then map each business event. An event whose
loan is unknown is parked and replayed when the loan appears. Mapped events go through the ingest
validator (contract check, pseudonymisation) and land in the outbox with the dead letters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import to_kafka
from contracts.topics import DEADLETTER
from services.common.bus import Message, Record
from services.common.metrics import FINERACT_IGNORED
from services.common.offsets import claim_new
from services.ingest.fineract import models as m
from services.ingest.fineract import store
from services.ingest.fineract.avro import (
    Envelope,
    FineractMessage,
    Item,
    SchemaRegistry,
    decode_record,
)
from services.ingest.fineract.errors import FineractDecodeError, UnmappableEvent
from services.ingest.fineract.mapping import (
    InputEvent,
    LoanInfo,
    MapperConfig,
    MapResult,
    map_item,
    source_of,
)
from services.ingest.validation import Invalid, Validator

ERROR_SOURCE = "fineract"


@dataclass(slots=True)
class BatchStats:
    records: int = 0
    published: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    parked: int = 0
    replayed: int = 0
    ignored: int = 0


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a Fineract record came from (dead-letter headers point back at it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @classmethod
    def of(cls, record: Record) -> Origin:
        return cls(record.topic, record.partition, record.offset, record.key, record.value)


def aggregate_kind(envelope: Envelope) -> str:
    category = envelope.category.lower()
    return "loan" if category in ("loan", "bulk") else category


class Processor:
    def __init__(
        self,
        registry: SchemaRegistry,
        validator: Validator,
        mapper: MapperConfig,
        *,
        topic_prefix: str = "",
        keep_original: bool = False,
    ) -> None:
        self._registry = registry
        self._validator = validator
        self._mapper = mapper
        self._prefix = topic_prefix
        self._keep_original = keep_original

    async def apply(self, session: AsyncSession, records: Sequence[Record]) -> BatchStats:
        batch = _Batch(self, session)
        await batch.run(records)
        await store.append_outbox(session, batch.out)
        return batch.stats

    async def expire_parked(
        self, session: AsyncSession, max_wait: timedelta, limit: int = 1000
    ) -> int:
        """Dead-letter events that waited longer than ``max_wait`` for their loan."""
        expired = await store.take_expired(session, datetime.now(UTC) - max_wait, limit)
        out = [
            self.dead_letter(
                Origin(p.topic, p.partition, p.offset, p.key, p.value),
                "loan_unknown",
                f"loan {p.loan_id} still unknown after {max_wait.total_seconds():.0f}s",
                source=source_of(p.tenant),
                item=p.item_index,
            )
            for p in expired
        ]
        await store.append_outbox(session, out)
        return len(out)

    def dead_letter(
        self,
        origin: Origin,
        reason: str,
        detail: str,
        *,
        source: str = ERROR_SOURCE,
        item: int | None = None,
        envelope: Envelope | None = None,
    ) -> Message:
        headers = [
            ("error.reason", reason),
            ("error.source", source),
            ("error.detail", detail[:500]),
            ("error.topic", origin.topic),
            ("error.partition", str(origin.partition)),
            ("error.offset", str(origin.offset)),
        ]
        if item:
            headers.append(("error.item", str(item)))
        if self._keep_original:
            value = origin.value
        else:  # a reference instead of the payload: Fineract payloads carry names and phones
            ref: dict[str, Any] = {"reason": reason, "detail": detail[:500]}
            ref["topic"] = origin.topic
            ref |= {"partition": origin.partition, "offset": origin.offset, "item": item}
            if envelope is not None:
                ref["envelope"] = {
                    k: v for k, v in envelope.to_json().items() if k not in ("source",)
                }
            value = json.dumps(ref, sort_keys=True).encode()
        return Message(
            self._prefix + DEADLETTER.name,
            value,
            origin.key,
            tuple((k, v.encode()) for k, v in headers),
        )

    def canonical(self, event: InputEvent) -> Message:
        """Validate and pseudonymise through the ingest validator; raises ``Invalid``."""
        record = to_kafka(self._validator.canonical(event.structured()))
        return Message(self._prefix + record.topic, record.value, record.key, tuple(record.headers))


class _Batch:
    """State of one batch: loans looked up, high-water marks, outbox rows in order."""

    def __init__(self, processor: Processor, session: AsyncSession) -> None:
        self.p = processor
        self.session = session
        self.out: list[Message] = []
        self.stats = BatchStats()
        self.loans: dict[str, dict[int, LoanInfo]] = {}

    async def run(self, records: Sequence[Record]) -> None:
        self.stats.records = len(records)
        decoded: list[tuple[Origin, FineractMessage]] = []
        for record in records:
            origin = Origin.of(record)
            try:
                decoded.append((origin, decode_record(record.key, record.value, self.p._registry)))
            except FineractDecodeError as exc:
                self._dead(origin, exc.reason, exc.detail)
        fresh = await self._fresh(decoded)
        await self._prefetch_loans(fresh)
        keys = [_aggregate(msg) for _, msg in fresh]
        marks = await store.load_high_water(self.session, keys)
        changed: dict[store.AggregateKey, int] = {}
        for origin, msg in fresh:
            key, env = _aggregate(msg), msg.envelope
            last = marks.get(key)
            if last is not None and env.id <= last:
                self._dead(
                    origin,
                    "out_of_order",
                    f"envelope id {env.id} <= {last} already applied for this {key[1]}",
                    env,
                )
                continue
            marks[key] = changed[key] = env.id
            for item in msg.items:
                await self._item(origin, env, item)
        await store.store_high_water(self.session, changed)

    async def _fresh(
        self, decoded: list[tuple[Origin, FineractMessage]]
    ) -> list[tuple[Origin, FineractMessage]]:
        """Messages not applied before, each once, sorted per aggregate by envelope id."""
        keys = [(msg.envelope.tenant_id, msg.envelope.idempotency_key) for _, msg in decoded]
        new = await claim_new(self.session, m.messages, keys)
        fresh = []
        for (origin, msg), key in zip(decoded, keys, strict=True):
            if key in new:
                new.discard(key)
                fresh.append((origin, msg))
            else:
                self.stats.duplicates += 1
        fresh.sort(key=lambda pair: (_aggregate(pair[1]), pair[1].envelope.id))
        return fresh

    async def _prefetch_loans(self, fresh: list[tuple[Origin, FineractMessage]]) -> None:
        wanted: dict[str, set[int]] = {}
        for _, msg in fresh:
            if aggregate_kind(msg.envelope) == "loan" and msg.aggregate_id is not None:
                wanted.setdefault(msg.envelope.tenant_id, set()).add(msg.aggregate_id)
        for tenant, ids in wanted.items():
            self.loans.setdefault(tenant, {}).update(
                await store.load_loans(self.session, tenant, ids)
            )

    async def _map(self, env: Envelope, item: Item) -> tuple[list[InputEvent], int | None]:
        tenant = env.tenant_id
        known = self.loans.setdefault(tenant, {})
        result = _safe_map(env, item, known, self.p._mapper)
        if result.waiting_for_loan is not None and result.waiting_for_loan not in known:
            known.update(await store.load_loans(self.session, tenant, [result.waiting_for_loan]))
            if result.waiting_for_loan in known:
                result = _safe_map(env, item, known, self.p._mapper)
        if result.ignored:
            self.stats.ignored += 1
            FINERACT_IGNORED.labels(item.type).inc()
        if result.loans:
            await store.upsert_loans(self.session, tenant, result.loans)
            known.update(result.loans)
        return result.events, result.waiting_for_loan

    async def _item(
        self, origin: Origin, env: Envelope, item: Item, parked_at: datetime | None = None
    ) -> None:
        try:
            events, waiting = await self._map(env, item)
        except UnmappableEvent as exc:
            self._dead(origin, exc.reason, exc.detail, env, item.index)
            return
        if waiting is not None:
            await store.park(
                self.session,
                store.ParkedEvent(
                    0,
                    env.tenant_id,
                    waiting,
                    item.index,
                    origin.topic,
                    origin.partition,
                    origin.offset,
                    origin.key,
                    origin.value or b"",
                    parked_at or datetime.now(UTC),
                ),
            )
            self.stats.parked += 1
            return
        await self._emit(origin, env, item, events)
        if loan_ids := _loans_of(item):
            for parked in await store.take_parked(self.session, env.tenant_id, loan_ids):
                await self._replay(parked)

    async def _replay(self, parked: store.ParkedEvent) -> None:
        origin = Origin(parked.topic, parked.partition, parked.offset, parked.key, parked.value)
        try:
            msg = decode_record(parked.key, parked.value, self.p._registry)
        except FineractDecodeError as exc:  # cannot happen unless schemas were removed
            self._dead(origin, exc.reason, exc.detail, item=parked.item_index)
            return
        self.stats.replayed += 1
        for item in msg.items:
            if item.index == parked.item_index:
                await self._item(origin, msg.envelope, item, parked.parked_at)

    async def _emit(
        self, origin: Origin, env: Envelope, item: Item, events: list[InputEvent]
    ) -> None:
        once = [(env.tenant_id, e.once_key) for e in events if e.once_key]
        claimed = await claim_new(self.session, m.once, once) if once else set()
        for event in events:
            if event.once_key and (env.tenant_id, event.once_key) not in claimed:
                self.stats.duplicates += 1
                continue
            try:
                self.out.append(self.p.canonical(event))
                self.stats.published += 1
            except Invalid as exc:
                detail = "; ".join(f"{e.field}: {e.reason}" for e in exc.errors)
                self._dead(origin, "invalid", f"{event.type}: {detail}", env, item.index)

    def _dead(
        self,
        origin: Origin,
        reason: str,
        detail: str,
        env: Envelope | None = None,
        item: int | None = None,
    ) -> None:
        source = source_of(env.tenant_id) if env else ERROR_SOURCE
        self.out.append(
            self.p.dead_letter(origin, reason, detail, source=source, item=item, envelope=env)
        )
        self.stats.dead_lettered += 1


def _safe_map(
    env: Envelope, item: Item, loans: Mapping[int, LoanInfo], config: MapperConfig
) -> MapResult:
    """Mapping is pure: whatever it raises on an odd payload is that payload's fault, and must
    dead-letter it rather than stop the consumer on a poison message."""
    try:
        return map_item(env, item, loans, config)
    except UnmappableEvent:
        raise
    except Exception as exc:  # noqa: BLE001 - see docstring
        raise UnmappableEvent(f"{item.type}: {type(exc).__name__}: {exc}"[:300]) from exc


def _aggregate(msg: FineractMessage) -> store.AggregateKey:
    aggregate = msg.aggregate_id if msg.aggregate_id is not None else -1
    return (msg.envelope.tenant_id, aggregate_kind(msg.envelope), aggregate)


def _loans_of(item: Item) -> list[int]:
    """Loans this event made known (so events parked for them can go)."""
    if item.schema.endswith(".LoanAccountDataV1") and item.payload.get("id") is not None:
        return [int(item.payload["id"])] if item.payload.get("clientId") else []
    return []
