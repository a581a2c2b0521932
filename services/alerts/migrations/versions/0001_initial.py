"""alert state, silences, notification log and outbox, Kafka outbox, offsets, dedup"""

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
        "business_date",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        schema=schema,
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("objective_id", sa.String(64), nullable=False),
        sa.Column("objective_code", sa.String(64), nullable=False),
        sa.Column("indicator", sa.String(100), nullable=False),
        sa.Column("segment", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("value", sa.String(64)),
        sa.Column("threshold", sa.String(64)),
        sa.Column("since", sa.Date, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("fired_on", sa.Date),
        sa.Column("resolved_on", sa.Date),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("fired_at", UtcDateTime),
        sa.Column("resolved_at", UtcDateTime),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("acked_at", UtcDateTime),
        sa.Column("acked_by", sa.String(200)),
        sa.Column("ack_comment", sa.Text),
        sa.Column("ack_severity", sa.String(16)),
        schema=schema,
    )
    op.create_index("ix_alerts_state", "alerts", ["state"], schema=schema)
    op.create_index("ix_alerts_fingerprint_state", "alerts", ["fingerprint", "state"], schema=schema)
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
        "notification_groups",
        sa.Column("group_key", sa.String(400), primary_key=True),
        sa.Column("receiver", sa.String(300), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("first_seen_at", UtcDateTime, nullable=False),
        sa.Column("last_sent_at", UtcDateTime),
        sa.Column("notified", sa.JSON, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        schema=schema,
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("group_key", sa.String(400), nullable=False),
        sa.Column("receiver", sa.String(300), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("destination", sa.Text, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("alert_ids", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("sent_at", UtcDateTime),
        schema=schema,
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"], schema=schema)
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"], schema=schema)
    op.create_table(
        "observations",
        sa.Column("code", sa.String(100), primary_key=True),
        sa.Column("segment", sa.String(200), primary_key=True),
        sa.Column("as_of", sa.Date, primary_key=True),
        sa.Column("value", sa.String(64)),
        sa.Column("received_at", UtcDateTime, nullable=False),
        schema=schema,
    )
    op.create_index("ix_observations_as_of", "observations", ["as_of"], schema=schema)
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.LargeBinary),
        sa.Column("value", sa.LargeBinary),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("seq", sa.BigInteger, unique=True),
        sa.Column("partition", sa.Integer),
        sa.Column("sent_at", UtcDateTime),
        schema=schema,
    )
    op.create_index("ix_outbox_pending", "outbox", ["sent_at", "seq"], schema=schema)
    op.create_table(
        "processed_events",
        sa.Column("source", sa.String, primary_key=True),
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("seen_at", UtcDateTime, nullable=False, server_default=NOW),
        schema=schema,
    )
    op.create_index("ix_processed_events_seen_at", "processed_events", ["seen_at"], schema=schema)
    op.create_table(
        "silences",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("matchers", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("starts_at", UtcDateTime, nullable=False),
        sa.Column("ends_at", UtcDateTime, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expired_by", sa.String(200)),
        schema=schema,
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"], schema=schema)
    op.create_table(
        "targets",
        sa.Column("target_id", sa.String(64), primary_key=True),
        sa.Column("indicator", sa.String(100), nullable=False),
        sa.Column("segment", sa.String(200), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("first_seen_on", sa.Date),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        schema=schema,
    )
    op.create_index("ix_targets_indicator_segment", "targets", ["indicator", "segment"], schema=schema)
