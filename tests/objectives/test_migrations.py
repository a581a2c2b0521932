"""The objectives schema upgrade on a database of the previous revision, on PostgreSQL and
SQLite: the audit trail keeps its rows (append-only) and gains the author's subject, empty for
the changes made before it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from services.common.db import alembic_config, create_engine, migrate, prepare_schema
from services.objectives.store import MIGRATIONS_DIR
from tests.schemas import drop_schemas

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OBJECTIVE = {"id": "o1", "code": "women", "seq": 1, "name": "Women", "description": "d",
             "dimension": "D1", "owner": "SPM", "status": "active", "version": 1,
             "created_at": T0, "updated_at": T0}  # fmt: skip
VERSION = {"objective_id": "o1", "version": 1, "action": "created", "author": "strategy-bot",
           "changed_at": T0, "reason": "board", "before": None, "after": {},
           "diff": []}  # fmt: skip


def _upgrade_to(conn: Connection, schema: str, revision: str) -> None:
    config = alembic_config(schema, MIGRATIONS_DIR)
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


def _table(name: str, columns: Any, schema: str | None) -> Any:
    json_columns = ("before", "after", "diff")
    return sa.table(
        name, *(sa.column(c, sa.JSON if c in json_columns else None) for c in columns),
        schema=schema,
    )  # fmt: skip


@pytest.mark.parametrize("mode", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
async def test_the_audit_trail_gains_the_author_subject(
    mode: str, tmp_path: Path, unique: str, request: pytest.FixtureRequest
) -> None:
    if mode == "sqlite":
        url, in_schema = f"sqlite+aiosqlite:///{tmp_path / 'objectives.db'}", None
    else:
        url, in_schema = request.getfixturevalue("postgres_url"), f"obj_mig_{unique}"
    schema = in_schema or "objectives"
    engine = create_engine(url, schema)
    try:
        async with engine.begin() as conn:
            await prepare_schema(conn, schema)
            await conn.run_sync(_upgrade_to, schema, "0001")
            await conn.execute(_table("objectives", OBJECTIVE, in_schema).insert(), [OBJECTIVE])
            await conn.execute(_table("objective_versions", VERSION, in_schema).insert(), [VERSION])
        await migrate(url, schema, MIGRATIONS_DIR)
        versions = _table("objective_versions", [*VERSION, "author_subject"], in_schema)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(sa.select(versions.c.author, versions.c.author_subject))
            ).all()
        assert [tuple(r) for r in rows] == [("strategy-bot", None)]
    finally:
        await engine.dispose()
        await drop_schemas(url, schema)
