"""`spm migrate [service]` (what the Kubernetes migration Job runs): every service's schema is
created and upgraded to its newest revision, and a second run changes nothing."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.indicators.oracle.harness import SPM

pytestmark = [pytest.mark.postgres]

SERVICES = ("ingest", "indicators", "objectives", "alerts", "accounts")


async def _revision(postgres_url: str, schema: str) -> str | None:
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(
                text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"{schema}.alembic_version"}
            )
            if not exists:
                return None
            version = await conn.scalar(text(f'SELECT version_num FROM "{schema}".alembic_version'))  # noqa: S608
            return str(version)
    finally:
        await engine.dispose()


def _migrate(postgres_url: str, schemas: dict[str, str], *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": postgres_url}
    env.update({f"{s.upper()}_DB_SCHEMA": schema for s, schema in schemas.items()})
    done = subprocess.run(
        [str(SPM), "migrate", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_migrate_one_service_then_all(postgres_url: str, unique: str) -> None:
    schemas = {s: f"mig_{s}_{unique}" for s in SERVICES}
    out = _migrate(postgres_url, schemas, "indicators")
    assert out.strip() == f"indicators: schema {schemas['indicators']} at the newest revision"
    assert await _revision(postgres_url, schemas["indicators"]) is not None
    assert await _revision(postgres_url, schemas["alerts"]) is None  # only the one asked for

    out = _migrate(postgres_url, schemas)
    assert [line.split(":")[0] for line in out.splitlines()] == list(SERVICES)
    revisions = {s: await _revision(postgres_url, schema) for s, schema in schemas.items()}
    assert all(revisions.values()), revisions
    _migrate(postgres_url, schemas)  # idempotent
    assert {s: await _revision(postgres_url, schema) for s, schema in schemas.items()} == revisions
