"""Database fixtures: every database test runs on the real PostgreSQL and on SQLite.

Other services' tests copy this pattern: ``db_url`` is parametrised over both backends (the
PostgreSQL case is marked ``postgres``), ``db_schema`` is a fresh schema per test (dropped after
it on PostgreSQL; on SQLite the file lives in ``tmp_path``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.schemas import drop_schemas

DB_BACKENDS = [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]


@pytest.fixture(params=DB_BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}"


@pytest.fixture
async def db_schema(db_url: str, unique: str) -> AsyncIterator[str]:
    schema = f"test_{unique}"
    yield schema
    await drop_schemas(db_url, schema)


ENV_PY = """\
from services.common.migrations import run_migrations

run_migrations()
"""

REVISION_0001 = '''\
"""widgets, consumer offsets and processed events"""

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
        "widgets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        schema=schema,
    )
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
        "processed_events",
        sa.Column("source", sa.String, primary_key=True),
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("seen_at", UtcDateTime, nullable=False, server_default=NOW),
        schema=schema,
    )
    op.create_index(
        "ix_processed_events_seen_at", "processed_events", ["seen_at"], schema=schema
    )


def downgrade() -> None:
    schema = target_schema()
    for table in ("processed_events", "consumer_offsets", "widgets"):
        op.drop_table(table, schema=schema)
'''

REVISION_0002 = '''\
"""widgets get a colour"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import target_schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("widgets", sa.Column("colour", sa.String(20)), schema=target_schema())


def downgrade() -> None:
    op.drop_column("widgets", "colour", schema=target_schema())
'''


def write_revision(migrations_dir: Path, filename: str, source: str) -> None:
    (migrations_dir / "versions" / filename).write_text(source)


@pytest.fixture
def sample_migrations(tmp_path: Path) -> Path:
    """A throwaway migrations directory: env.py via the shared helper plus revision 0001."""
    migrations_dir = tmp_path / "migrations"
    (migrations_dir / "versions").mkdir(parents=True)
    (migrations_dir / "env.py").write_text(ENV_PY)
    write_revision(migrations_dir, "0001_initial.py", REVISION_0001)
    return migrations_dir
