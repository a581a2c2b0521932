"""Alembic glue shared by every service: the whole body of a service's ``migrations/env.py``.

A service's ``migrations/env.py``::

    from services.common.migrations import run_migrations
    from services.indicators.models import metadata
    run_migrations(metadata)

Version files create objects in :func:`target_schema` (the service's schema on PostgreSQL,
``None`` on SQLite, which has no schemas)::

    from services.common.migrations import target_schema
    op.create_table("buckets", ..., schema=target_schema())

:func:`services.common.db.migrate` runs the migrations at start-up on a connection it passes in
``config.attributes``; the ``alembic`` command line also works (``sqlalchemy.url`` or
``DATABASE_URL``; the schema comes from the service's metadata).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic import context
from sqlalchemy import Connection, MetaData

from services.common.db import run_in_schema

_TARGET_SCHEMA = "spm.target_schema"


def run_migrations(target_metadata: MetaData | None = None) -> None:
    """Configure alembic for one service and run its migrations (online mode only)."""
    config = context.config
    schema = config.attributes.get("schema") or (target_metadata and target_metadata.schema)
    if not schema:
        raise RuntimeError("no schema: call migrate(url, schema, dir) or give the metadata one")
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported")
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _run_in_connection(connection, schema, target_metadata)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or DATABASE_URL")
    asyncio.run(run_in_schema(url, schema, _run_in_connection, schema, target_metadata))


def target_schema() -> str | None:
    """The schema the running migration writes to: the service's, or ``None`` on SQLite."""
    schema: str | None = context.config.attributes[_TARGET_SCHEMA]
    return schema


def _run_in_connection(
    connection: Connection, schema: str, target_metadata: MetaData | None
) -> None:
    sqlite = connection.dialect.name == "sqlite"
    effective = None if sqlite else schema
    context.config.attributes[_TARGET_SCHEMA] = effective

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "schema" or name == effective

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=effective,
        include_schemas=not sqlite,
        include_name=include_name,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
