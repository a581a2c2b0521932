"""The service's engine: its tables live in ``objectives`` unless settings name another schema."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import migrate_service, open_service_engine
from services.objectives.config import ObjectivesSettings
from services.objectives.models import SCHEMA

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


async def migrate_schema(settings: ObjectivesSettings) -> None:
    await migrate_service(settings.database_url, settings.objectives_db_schema, MIGRATIONS_DIR)


def open_engine(settings: ObjectivesSettings) -> AsyncEngine:
    return open_service_engine(settings.database_url, settings.objectives_db_schema, SCHEMA)
