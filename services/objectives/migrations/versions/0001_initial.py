"""objectives, targets, the audit trail and the outbox"""

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
    ref = f"{schema}.objectives.id" if schema else "objectives.id"
    op.create_table(
        "objectives",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("seq", sa.Integer, nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("dimension", sa.String(4), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("rationale", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        schema=schema,
    )
    op.create_table(
        "targets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("objective_id", sa.String(36), sa.ForeignKey(ref), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("indicator", sa.String(100), nullable=False),
        sa.Column("segment", sa.String(200), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("threshold", sa.JSON, nullable=False),
        sa.Column("warning_threshold", sa.JSON, nullable=True),
        sa.Column("for_days", sa.Integer, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("notify", sa.JSON, nullable=False),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("effective_to", sa.Date, nullable=True),
        sa.Column("rationale", sa.Text, nullable=True),
        schema=schema,
    )
    op.create_index(
        "ix_targets_indicator_segment", "targets", ["indicator", "segment"], schema=schema
    )
    op.create_index("ix_targets_objective", "targets", ["objective_id"], schema=schema)
    op.create_table(
        "objective_versions",
        sa.Column("objective_id", sa.String(36), sa.ForeignKey(ref), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("changed_at", UtcDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=False),
        sa.Column("diff", sa.JSON, nullable=False),
        schema=schema,
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
        ),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=True),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=True, unique=True),
        sa.Column("partition", sa.Integer, nullable=True),
        sa.Column("sent_at", UtcDateTime, nullable=True),
        schema=schema,
    )
    op.create_index("ix_outbox_pending", "outbox", ["sent_at", "seq"], schema=schema)
    if schema is not None:  # PostgreSQL: the audit trail is append-only
        op.execute(
            f"""
            CREATE FUNCTION "{schema}".refuse_history_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'objective_versions is append-only';
            END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"""
            CREATE TRIGGER objective_versions_append_only
                BEFORE UPDATE OR DELETE ON "{schema}".objective_versions
                FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse_history_change()
            """
        )


def downgrade() -> None:
    schema = target_schema()
    if schema is not None:
        op.execute(f'DROP FUNCTION IF EXISTS "{schema}".refuse_history_change() CASCADE')
    for table in ("outbox", "objective_versions", "targets", "objectives"):
        op.drop_table(table, schema=schema)
