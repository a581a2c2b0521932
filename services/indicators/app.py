"""App factory of the indicator service: ``spm serve indicators`` (Kafka + PostgreSQL) or
in-process on the memory bus + SQLite (the embedded mode composes it)."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.bus import Bus
from services.common.http import create_service_app
from services.common.lifecycle import BusLease, lifespan_of
from services.common.settings import CommonSettings
from services.common.telemetry import ensure_telemetry
from services.indicators.api.indicators import router
from services.indicators.config import IndicatorSettings
from services.indicators.service import IndicatorService


def create_app(settings: CommonSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    """The indicator service; ``bus`` lets the embedded mode share its in-process bus."""
    cfg = IndicatorSettings.of(settings)
    ensure_telemetry("spm-indicators", cfg)
    lease = BusLease.of(cfg, bus)
    service = IndicatorService(cfg, lease.bus)
    app = create_service_app(
        service="indicators",
        title="SPM Monitor — indicators",
        description="Rolling social performance indicators: values, series, breakdowns, catalog.",
        settings=cfg,
        routers=[router],
        lifespan=lifespan_of(service, lease),
        readiness=[service.ready],
    )
    app.state.indicators = service
    return app
