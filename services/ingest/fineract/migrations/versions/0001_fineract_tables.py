"""Fineract adapter tables: offsets, dedup, aggregates, loans, parked events, outbox.

Revision ID: fineract_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.common.db import UtcDateTime
from services.common.migrations import target_schema

revision = "fineract_0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "consumer_offsets",
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        schema=schema,
    )
    for name in ("fineract_messages", "fineract_once"):
        op.create_table(
            name,
            sa.Column("source", sa.String, primary_key=True),
            sa.Column("id", sa.String, primary_key=True),
            sa.Column("seen_at", UtcDateTime, nullable=False, server_default=NOW),
            schema=schema,
        )
        op.create_index(f"ix_{name}_seen_at", name, ["seen_at"], schema=schema)
    op.create_table(
        "fineract_aggregates",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("aggregate_id", sa.BigInteger, primary_key=True),
        sa.Column("last_envelope_id", sa.BigInteger, nullable=False),
        schema=schema,
    )
    op.create_table(
        "fineract_loans",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("loan_id", sa.BigInteger, primary_key=True),
        sa.Column("client_id", sa.BigInteger, nullable=False),
        sa.Column("branch_id", sa.String(64)),
        sa.Column("product_id", sa.String(64)),
        sa.Column("currency", sa.String(3)),
        sa.Column("loan_cycle", sa.Integer),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        schema=schema,
    )
    op.create_table(
        "fineract_parked",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("loan_id", sa.BigInteger, nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("key", sa.LargeBinary),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("parked_at", UtcDateTime, nullable=False),
        schema=schema,
        sqlite_autoincrement=True,
    )
    op.create_index("ix_fineract_parked_parked_at", "fineract_parked", ["parked_at"], schema=schema)
    op.create_index(
        "ix_fineract_parked_loan", "fineract_parked", ["tenant", "loan_id"], schema=schema
    )
    op.create_table(
        "fineract_outbox",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.LargeBinary),
        sa.Column("value", sa.LargeBinary),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        schema=schema,
    )
    op.create_table(
        "fineract_relay_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        schema=schema,
    )
    state = sa.table("fineract_relay_state", sa.column("name"), sa.column("value"), schema=schema)
    op.bulk_insert(state, [{"name": "next_seq", "value": 1}, {"name": "relayed", "value": 1}])


def downgrade() -> None:
    schema = target_schema()
    for name in (
        "fineract_relay_state",
        "fineract_outbox",
        "fineract_parked",
        "fineract_loans",
        "fineract_aggregates",
        "fineract_once",
        "fineract_messages",
        "consumer_offsets",
    ):
        op.drop_table(name, schema=schema)
