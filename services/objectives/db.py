"""The service's engine: its tables live in ``objectives`` unless settings name another schema."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_engine, is_sqlite, migrate, service_database_url
from services.objectives.config import ObjectivesSettings
from services.objectives.models import SCHEMA

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def database_url(settings: ObjectivesSettings) -> str:
    return service_database_url(settings.database_url, settings.objectives_db_schema)


async def migrate_schema(settings: ObjectivesSettings) -> None:
    await migrate(database_url(settings), settings.objectives_db_schema, MIGRATIONS_DIR)


def open_engine(settings: ObjectivesSettings) -> AsyncEngine:
    """An engine whose statements address the configured schema (none on SQLite)."""
    schema = settings.objectives_db_schema
    engine = create_engine(database_url(settings), schema)
    target = None if is_sqlite(engine) else schema
    return engine.execution_options(schema_translate_map={SCHEMA: target})
