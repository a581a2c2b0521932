"""corrective actions and their history"""

import sqlalchemy as sa
from alembic import op

from services.common.db import UtcDateTime
from services.common.migrations import target_schema

revision = "0003_actions"
down_revision = "0002_who"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "actions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("alert_id", sa.String(36)),
        sa.Column("target_id", sa.String(64)),
        sa.Column("objective_id", sa.String(64)),
        sa.Column("indicator", sa.String(100), nullable=False),
        sa.Column("segment", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("owner_notify", sa.String(320)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("review_date", sa.Date, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("done_at", UtcDateTime),
        sa.Column("overdue_at", UtcDateTime),
        sa.Column("owner_notified_at", UtcDateTime),
        sa.Column("manager_notified_at", UtcDateTime),
        sa.Column("direction", sa.String(16)),
        sa.Column("lower", sa.String(64)),
        sa.Column("upper", sa.String(64)),
        sa.Column("opened_value", sa.String(64)),
        sa.Column("opened_as_of", sa.Date),
        sa.Column("target_threshold", sa.String(64)),
        sa.Column("effectiveness", sa.String(16)),
        sa.Column("judged_value", sa.String(64)),
        sa.Column("judged_as_of", sa.Date),
        sa.Column("judged_at", UtcDateTime),
        schema=schema,
    )
    op.create_index("ix_actions_created_at", "actions", ["created_at"], schema=schema)
    op.create_index("ix_actions_status", "actions", ["status"], schema=schema)
    op.create_table(
        "action_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("action_id", sa.String(36), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("note", sa.Text),
        schema=schema,
    )
    op.create_index(
        "ix_action_history_action", "action_history", ["action_id", "id"], schema=schema
    )


def downgrade() -> None:
    schema = target_schema()
    op.drop_table("action_history", schema=schema)
    op.drop_table("actions", schema=schema)
