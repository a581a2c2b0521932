"""Tables of the alert service (schema ``alerts``; SQLite maps the schema away).

Numbers are stored as decimal text: exact on both backends, and SQLite has no decimal type.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.common.db import UtcDateTime
from services.common.offsets import dedup_table, offsets_table
from services.common.outbox import outbox_table

SCHEMA = "alerts"
metadata = MetaData(schema=SCHEMA)

consumer_offsets = offsets_table(metadata)
processed_events = dedup_table(metadata)
outbox = outbox_table(metadata)
"""spm.alert.changed.v1 records on their way to Kafka (the shared relay)."""

targets = Table(
    "targets",
    metadata,
    Column("target_id", String(64), primary_key=True),
    Column("indicator", String(100), nullable=False),
    Column("segment", String(200), nullable=False),
    Column("data", JSON, nullable=False),
    # The TargetChanged payload in JSON form.
    Column("first_seen_on", Date, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_targets_indicator_segment", "indicator", "segment"),
)

observations = Table(
    "observations",
    metadata,
    Column("code", String(100), primary_key=True),
    Column("segment", String(200), primary_key=True),
    Column("as_of", Date, primary_key=True),
    Column("value", String(64), nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_observations_as_of", "as_of"),
)

business_date = Table(
    "business_date",
    metadata,
    Column("id", Integer, primary_key=True),
    # The newest as_of seen on the indicator stream (one row): the no-data rule's "today".
    Column("as_of", Date, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    # One episode of a fingerprint: pending → firing → resolved (or deleted if it never fired).
    Column("fingerprint", String(64), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("objective_id", String(64), nullable=False),
    Column("objective_code", String(64), nullable=False),
    Column("indicator", String(100), nullable=False),
    Column("segment", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("value", String(64), nullable=True),
    Column("threshold", String(64), nullable=True),
    Column("since", Date, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("fired_on", Date, nullable=True),
    Column("resolved_on", Date, nullable=True),
    Column("detail", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("fired_at", UtcDateTime, nullable=True),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("acked_at", UtcDateTime, nullable=True),
    Column("acked_by", String(200), nullable=True),
    Column("acked_by_subject", String(200), nullable=True),  # a person's subject; NULL for keys
    Column("ack_comment", Text, nullable=True),
    Column("ack_severity", String(16), nullable=True),
    Index("ix_alerts_fingerprint_state", "fingerprint", "state"),
    Index("ix_alerts_state", "state"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("matchers", JSON, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_by_subject", String(200), nullable=True),
    Column("comment", Text, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expired_by", String(200), nullable=True),
    Column("expired_by_subject", String(200), nullable=True),
    # the branch the silence is limited to (an exact segment matcher), NULL = institution-wide:
    # what branch scope filters silences on (services.common.scope)
    Column("branch", String(64), nullable=True),
    Index("ix_silences_ends_at", "ends_at"),
    Index("ix_silences_branch", "branch"),
)

notification_groups = Table(
    "notification_groups",
    metadata,
    Column("group_key", String(400), primary_key=True),
    # The notification log of one group: what was last sent, and when.
    Column("receiver", String(300), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("last_sent_at", UtcDateTime, nullable=True),
    Column("notified", JSON, nullable=False),
    # fingerprint → {"id", "state", "severity"} of the alerts in the last notification.
    Column("updated_at", UtcDateTime, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(80), primary_key=True),
    # The idempotency key (Message-ID / Idempotency-Key header).
    Column("group_key", String(400), nullable=False),
    Column("receiver", String(300), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("destination", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("alert_ids", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    Index("ix_notifications_created_at", "created_at"),
)

actions = Table(
    "actions",
    metadata,
    Column("id", String(36), primary_key=True),
    # A corrective action recorded on an alert or a target (services/alerts/actions.py).
    Column("alert_id", String(36), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("objective_id", String(64), nullable=True),
    Column("indicator", String(100), nullable=False),
    Column("segment", String(200), nullable=False),
    Column("title", Text, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("owner_notify", String(320), nullable=True),
    # An e-mail address or a receiver of the routing configuration.
    Column("status", String(16), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("review_date", Date, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("done_at", UtcDateTime, nullable=True),
    Column("overdue_at", UtcDateTime, nullable=True),
    Column("owner_notified_at", UtcDateTime, nullable=True),
    Column("manager_notified_at", UtcDateTime, nullable=True),
    Column("direction", String(16), nullable=True),
    Column("lower", String(64), nullable=True),
    Column("upper", String(64), nullable=True),
    # The target's line when the action was opened: the judgement compares against it.
    Column("opened_value", String(64), nullable=True),
    Column("opened_as_of", Date, nullable=True),
    Column("target_threshold", String(64), nullable=True),
    Column("effectiveness", String(16), nullable=True),
    Column("judged_value", String(64), nullable=True),
    Column("judged_as_of", Date, nullable=True),
    Column("judged_at", UtcDateTime, nullable=True),
    Index("ix_actions_created_at", "created_at"),
    Index("ix_actions_status", "status"),
)

action_history = Table(
    "action_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    # Append-only: who changed what on an action, and when (``by`` is "system" for the tick).
    Column("action_id", String(36), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("by", String(200), nullable=False),
    Column("event", String(32), nullable=False),
    Column("changes", JSON, nullable=False),
    Column("note", Text, nullable=True),
    Index("ix_action_history_action", "action_id", "id"),
)
