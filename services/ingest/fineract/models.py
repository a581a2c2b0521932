"""Tables of the Fineract adapter (schema ``ingest_fineract``; SQLite maps the schema away).

Everything the consume -> produce path needs to be exactly-once lives here and is written in
one transaction per batch: consumer offsets, the messages already applied, per-aggregate
high-water marks, the loan table, parked events, and the outbox of records to publish.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    text,
)

from services.common.db import UtcDateTime
from services.common.offsets import dedup_table, offsets_table
from services.ingest.fineract.config import SCHEMA

metadata = MetaData(schema=SCHEMA)

consumer_offsets = offsets_table(metadata)

messages = dedup_table(metadata, "fineract_messages")
"""Fineract messages applied, as (tenant, idempotencyKey)."""

once = dedup_table(metadata, "fineract_once")
"""Canonical facts emitted at most once per tenant (a client's registration, a loan's closure)."""

aggregates = Table(
    "fineract_aggregates",
    metadata,
    Column("tenant", String(100), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("aggregate_id", BigInteger, primary_key=True),
    Column("last_envelope_id", BigInteger, nullable=False),
)
"""Highest envelope id applied per aggregate (loan, client…): ordering per aggregate."""

loans = Table(
    "fineract_loans",
    metadata,
    Column("tenant", String(100), primary_key=True),
    Column("loan_id", BigInteger, primary_key=True),
    Column("client_id", BigInteger, nullable=False),
    Column("branch_id", String(64)),
    Column("product_id", String(64)),
    Column("currency", String(3)),
    Column("loan_cycle", Integer),
    Column("disbursals", JSON),
    Column("updated_at", UtcDateTime, nullable=False, server_default=text("CURRENT_TIMESTAMP")),
)
"""Loan -> client/branch/product, which transaction and arrears payloads lack; and the
transaction ids the adapter gave the loan's disbursals not undone (what an undo reverses)."""

parked = Table(
    "fineract_parked",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("tenant", String(100), nullable=False),
    Column("loan_id", BigInteger, nullable=False),
    Column("item_index", Integer, nullable=False),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary, nullable=False),
    Column("parked_at", UtcDateTime, nullable=False, index=True),
    Index("ix_fineract_parked_loan", "tenant", "loan_id"),
    sqlite_autoincrement=True,
)
"""Events waiting for their loan to become known (the whole original record is kept)."""

outbox = Table(
    "fineract_outbox",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("topic", String(255), nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary),
    Column("headers", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False, server_default=text("CURRENT_TIMESTAMP")),
)
"""Records to publish, in ``seq`` order; the relay publishes each exactly once."""

relay_state = Table(
    "fineract_relay_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
"""``next_seq`` (outbox counter; its row lock serialises writers) and ``relayed`` (progress)."""
