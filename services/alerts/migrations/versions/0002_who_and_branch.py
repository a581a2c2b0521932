"""who acknowledged, silenced, expired (subject beside the display name); a silence's branch"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import target_schema

revision = "0002_who"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema = target_schema()
    op.add_column("alerts", sa.Column("acked_by_subject", sa.String(200)), schema=schema)
    op.add_column("silences", sa.Column("created_by_subject", sa.String(200)), schema=schema)
    op.add_column("silences", sa.Column("expired_by_subject", sa.String(200)), schema=schema)
    # the branch a silence is limited to (its segment matcher), NULL = institution-wide
    op.add_column("silences", sa.Column("branch", sa.String(64)), schema=schema)
    op.create_index("ix_silences_branch", "silences", ["branch"], schema=schema)


def downgrade() -> None:
    schema = target_schema()
    op.drop_index("ix_silences_branch", "silences", schema=schema)
    for table, column in (
        ("silences", "branch"),
        ("silences", "expired_by_subject"),
        ("silences", "created_by_subject"),
        ("alerts", "acked_by_subject"),
    ):
        op.drop_column(table, column, schema=schema)
