"""ingested_events: dedup keys of published events"""

import sqlalchemy as sa
from alembic import op

from services.common.db import UtcDateTime
from services.common.migrations import target_schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "ingested_events",
        sa.Column("source", sa.String, primary_key=True),
        sa.Column("id", sa.String, primary_key=True),
        sa.Column(
            "seen_at", UtcDateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
        ),
        schema=schema,
    )
    op.create_index("ix_ingested_events_seen_at", "ingested_events", ["seen_at"], schema=schema)


def downgrade() -> None:
    op.drop_table("ingested_events", schema=target_schema())
