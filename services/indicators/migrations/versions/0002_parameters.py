"""the parameters the stored aggregates were computed with"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import target_schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parameters",
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        schema=target_schema(),
    )


def downgrade() -> None:
    op.drop_table("parameters", schema=target_schema())
