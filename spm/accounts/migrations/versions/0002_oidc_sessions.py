"""sessions of people signed in through the identity provider, with its tokens"""

import sqlalchemy as sa
from alembic import op

from services.common.db import UtcDateTime
from services.common.migrations import target_schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "oidc_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("branches", sa.JSON),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("access_token", sa.Text, nullable=False),
        sa.Column("refresh_token", sa.Text),
        sa.Column("id_token", sa.Text),
        sa.Column("access_expires_at", UtcDateTime, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        schema=schema,
    )
    op.create_index("ix_oidc_sessions_subject", "oidc_sessions", ["subject"], schema=schema)


def downgrade() -> None:
    schema = target_schema()
    op.drop_index("ix_oidc_sessions_subject", "oidc_sessions", schema=schema)
    op.drop_table("oidc_sessions", schema=schema)
