"""The transaction ids the adapter gives a loan's disbursals (what an undo reverses).

Revision ID: fineract_0002
Revises: fineract_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.common.migrations import target_schema

revision = "fineract_0002"
down_revision = "fineract_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL on loans disbursed before: their disbursals cannot be undone (none was published
    # with a transaction id).
    op.add_column("fineract_loans", sa.Column("disbursals", sa.JSON), schema=target_schema())


def downgrade() -> None:
    op.drop_column("fineract_loans", "disbursals", schema=target_schema())
