"""Dropping the PostgreSQL schemas tests give the services, written once.

Every test that runs a service or a migration on a schema of its own (named with the ``unique``
suffix) drops it afterwards, so the shared database does not pile up schemas of earlier runs.
On SQLite there is nothing to drop: the database file lives in the test's ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import make_url, text

from services.common.db import create_engine


async def drop_schemas(database_url: str, *schemas: str) -> None:
    """Drop ``schemas`` with everything in them (those that exist); nothing on SQLite."""
    if make_url(database_url).get_backend_name() != "postgresql":
        return
    engine = create_engine(database_url, "public")
    try:
        async with engine.begin() as conn:
            for schema in schemas:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@asynccontextmanager
async def dropped_afterwards(database_url: str, *schemas: str) -> AsyncIterator[None]:
    """Run the block, then drop ``schemas`` whether it succeeded or not."""
    try:
        yield
    finally:
        await drop_schemas(database_url, *schemas)
