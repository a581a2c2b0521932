"""The service's engine: its tables live in ``objectives`` unless settings name another schema."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import migrate, open_service_engine, service_database_url
from services.objectives.config import ObjectivesSettings
from services.objectives.models import SCHEMA

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def database_url(settings: ObjectivesSettings) -> str:
    return service_database_url(settings.database_url, settings.objectives_db_schema)


async def migrate_schema(settings: ObjectivesSettings) -> None:
    await migrate(database_url(settings), settings.objectives_db_schema, MIGRATIONS_DIR)


def open_engine(settings: ObjectivesSettings) -> AsyncEngine:
    return open_service_engine(settings.database_url, settings.objectives_db_schema, SCHEMA)
