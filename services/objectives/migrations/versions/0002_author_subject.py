"""the audit trail names the person: the author's subject beside the display name"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import target_schema

revision = "0002_author_subject"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "objective_versions",
        sa.Column("author_subject", sa.String(200)),
        schema=target_schema(),
    )


def downgrade() -> None:
    op.drop_column("objective_versions", "author_subject", schema=target_schema())
