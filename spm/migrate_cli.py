"""``spm migrate [service]``: upgrade the services' database schemas and exit.

Every service also migrates its schema when it starts; this command does it on its own, once, so
a deployment can run the migrations as a step before the services (the Kubernetes Job in
deploy/k8s) and see a failed migration as a failed step rather than as services that never get
ready. Migrations are idempotent (alembic ``upgrade head`` in one transaction).
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated

import typer

from services.common.errors import SpmError


class Target(StrEnum):
    all = "all"
    ingest = "ingest"
    indicators = "indicators"
    objectives = "objectives"
    alerts = "alerts"
    accounts = "accounts"


async def _ingest() -> str:
    from services.common.db import migrate_service
    from services.ingest.app import MIGRATIONS
    from services.ingest.config import IngestSettings

    settings = IngestSettings()
    await migrate_service(settings.database_url, settings.ingest_db_schema, MIGRATIONS)
    return settings.ingest_db_schema


async def _indicators() -> str:
    from services.common.db import migrate_service
    from services.indicators.config import IndicatorSettings
    from services.indicators.service import MIGRATIONS_DIR

    settings = IndicatorSettings()
    await migrate_service(settings.database_url, settings.indicators_db_schema, MIGRATIONS_DIR)
    return settings.indicators_db_schema


async def _objectives() -> str:
    from services.objectives.config import ObjectivesSettings
    from services.objectives.store import migrate_schema

    settings = ObjectivesSettings()
    await migrate_schema(settings)
    return settings.objectives_db_schema


async def _alerts() -> str:
    from services.alerts.config import AlertSettings
    from services.alerts.service import MIGRATIONS_DIR
    from services.common.db import migrate_service

    settings = AlertSettings()
    await migrate_service(settings.database_url, settings.alerts_db_schema, MIGRATIONS_DIR)
    return settings.alerts_db_schema


async def _accounts() -> str:
    from services.common.db import migrate_service
    from spm.accounts.config import DashboardSettings
    from spm.accounts.store import MIGRATIONS_DIR

    settings = DashboardSettings()
    await migrate_service(settings.database_url, settings.accounts_db_schema, MIGRATIONS_DIR)
    return settings.accounts_db_schema


MIGRATIONS = {
    Target.ingest: _ingest,
    Target.indicators: _indicators,
    Target.objectives: _objectives,
    Target.alerts: _alerts,
    Target.accounts: _accounts,  # the dashboard's local accounts and sessions
}


def migrate_command(
    service: Annotated[
        Target, typer.Argument(help="Which service's schema (default: every service's).")
    ] = Target.all,
) -> None:
    """Upgrade the database schema of one service, or of all, to the newest revision; exit."""
    targets = list(MIGRATIONS) if service is Target.all else [service]
    for target in targets:
        try:
            schema = asyncio.run(MIGRATIONS[target]())
        except SpmError as exc:
            typer.echo(f"error: {target.value}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{target.value}: schema {schema} at the newest revision")
