"""ingested_events.content_hash: tell a repeat (duplicate) from other content (conflict)"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import target_schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: keys claimed before this migration have no hash and count as duplicates.
    op.add_column(
        "ingested_events",
        sa.Column("content_hash", sa.LargeBinary, nullable=True),
        schema=target_schema(),
    )


def downgrade() -> None:
    op.drop_column("ingested_events", "content_hash", schema=target_schema())
