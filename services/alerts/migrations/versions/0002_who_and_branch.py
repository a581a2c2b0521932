"""who acknowledged, silenced, expired (subject beside the display name); a silence's branch"""

import sqlalchemy as sa
from alembic import op

from services.alerts.silences import branch_of_matchers
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
    _backfill_branches(schema)


def _backfill_branches(schema: str | None) -> None:
    """Silences made before this revision: their branch from their ``segment = branch:<code>``
    matcher, as new ones get it (else they would count as institution-wide)."""
    silences = sa.table(
        "silences",
        sa.column("id", sa.String),
        sa.column("matchers", sa.JSON),
        sa.column("branch", sa.String),
        schema=schema,
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(silences.c.id, silences.c.matchers)).all():
        branch = branch_of_matchers(row.matchers or [])
        if branch is not None:
            bind.execute(
                silences.update().where(silences.c.id == row.id).values(branch=branch)
            )


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
