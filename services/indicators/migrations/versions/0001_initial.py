"""indicator engine state, deltas, offsets, dedup, published values"""

import sqlalchemy as sa
from alembic import op

from services.common.db import UtcDateTime
from services.common.migrations import target_schema

revision = "0001"
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
    op.create_table(
        "processed_events",
        sa.Column("source", sa.String, primary_key=True),
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("seen_at", UtcDateTime, nullable=False, server_default=NOW),
        schema=schema,
    )
    op.create_index(
        "ix_processed_events_seen_at", "processed_events", ["seen_at"], schema=schema
    )
    op.create_table(
        "facts",
        sa.Column("unit", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("source", sa.String, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        schema=schema,
    )
    op.create_table(
        "deltas",
        sa.Column("unit", sa.Integer, primary_key=True),
        sa.Column("component", sa.String(120), primary_key=True),
        sa.Column("set_id", sa.BigInteger, primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        schema=schema,
    )
    op.create_table(
        "segment_sets",
        sa.Column("set_id", sa.BigInteger, primary_key=True),
        sa.Column("segment", sa.String(220), primary_key=True),
        schema=schema,
    )
    op.create_table(
        "resolutions",
        sa.Column("unit", sa.Integer, primary_key=True),
        sa.Column("source", sa.String, primary_key=True),
        sa.Column("complaint_id", sa.String, primary_key=True),
        sa.Column("branch", sa.String(220), nullable=False),
        sa.Column("resolved_day", sa.Integer, nullable=False),
        sa.Column("micros", sa.BigInteger, nullable=False),
        schema=schema,
    )
    op.create_index(
        "ix_resolutions_resolved_day", "resolutions", ["resolved_day"], schema=schema
    )
    op.create_table(
        "seen_values",
        sa.Column("dimension", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
        schema=schema,
    )
    op.create_table(
        "watermarks",
        sa.Column("unit", sa.Integer, primary_key=True),
        sa.Column("max_day", sa.Integer, nullable=False),
        schema=schema,
    )
    op.create_table(
        "clock",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("day", sa.Integer, nullable=False),
        schema=schema,
    )
    op.create_table(
        "published",
        sa.Column("code", sa.String(120), primary_key=True),
        sa.Column("segment", sa.String(220), primary_key=True),
        sa.Column("as_of", sa.Integer, nullable=False),
        sa.Column("value", sa.Text),
        sa.Column("numerator", sa.Text),
        sa.Column("denominator", sa.Text),
        sa.Column("n", sa.BigInteger),
        sa.Column("published_at", UtcDateTime, nullable=False),
        schema=schema,
    )


def downgrade() -> None:
    schema = target_schema()
    for table in (
        "published", "clock", "watermarks", "seen_values", "resolutions", "segment_sets",
        "deltas", "facts",
        "processed_events", "consumer_offsets",
    ):  # fmt: skip
        op.drop_table(table, schema=schema)
