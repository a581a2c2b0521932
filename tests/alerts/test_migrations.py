"""The alert service's schema upgrade on a database of the previous revision, on PostgreSQL and
SQLite: silences made before it get their branch (from their segment matcher), and the columns
of who acted are there, empty."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from services.alerts.service import MIGRATIONS_DIR
from services.common.db import alembic_config, create_engine, migrate, prepare_schema
from tests.schemas import drop_schemas

T0 = datetime(2025, 6, 1, tzinfo=UTC)
MATCHERS = {
    "MSA": [{"name": "segment", "op": "=", "value": "branch:MSA"},
            {"name": "kind", "op": "=", "value": "breach"}],
    None: [{"name": "segment", "op": "=~", "value": "branch:.*"}],
}  # fmt: skip


def _upgrade_to(conn: Connection, schema: str, revision: str) -> None:
    config = alembic_config(schema, MIGRATIONS_DIR)
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


def _silences(schema: str | None, *extra: str) -> Any:
    names = ("id", "matchers", "created_by", "comment", "starts_at", "ends_at", "created_at")
    return sa.table(
        "silences",
        *(sa.column(n, sa.JSON if n == "matchers" else None) for n in names + extra),
        schema=schema,
    )


@pytest.mark.parametrize("mode", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
async def test_old_silences_get_their_branch(
    mode: str, tmp_path: Path, unique: str, request: pytest.FixtureRequest
) -> None:
    if mode == "sqlite":
        url, in_schema = f"sqlite+aiosqlite:///{tmp_path / 'alerts.db'}", None
    else:
        url = request.getfixturevalue("postgres_url")
        in_schema = f"alerts_mig_{unique}"
    schema = in_schema or "alerts"
    engine = create_engine(url, schema)
    ids = {branch: str(uuid.uuid4()) for branch in MATCHERS}
    try:
        async with engine.begin() as conn:
            await prepare_schema(conn, schema)
            await conn.run_sync(_upgrade_to, schema, "0001")
            await conn.execute(_silences(in_schema).insert(), [
                {"id": ids[b], "matchers": mt, "created_by": "ops", "comment": "c",
                 "starts_at": T0, "ends_at": T0, "created_at": T0}
                for b, mt in MATCHERS.items()
            ])  # fmt: skip
        await migrate(url, schema, MIGRATIONS_DIR)
        table = _silences(in_schema, "branch", "created_by_subject", "expired_by_subject")
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(table))).all()
        got = {r.id: (r.branch, r.created_by_subject, r.expired_by_subject) for r in rows}
        assert got == {ids["MSA"]: ("MSA", None, None), ids[None]: (None, None, None)}
    finally:
        await engine.dispose()
        await drop_schemas(url, schema)
