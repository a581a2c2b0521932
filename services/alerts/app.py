"""App factory of the alert service: ``spm serve alerts`` (Kafka + PostgreSQL), or in-process on
the memory bus + SQLite (the embedded mode composes it)."""

from __future__ import annotations

from fastapi import FastAPI

from services.alerts.api import actions, alerts, notifications, silences
from services.alerts.clock import Clock
from services.alerts.config import AlertSettings
from services.alerts.service import AlertService
from services.common.bus import Bus
from services.common.http import create_service_app
from services.common.lifecycle import BusLease, lifespan_of
from services.common.settings import CommonSettings
from services.common.telemetry import ensure_telemetry


def create_app(
    settings: CommonSettings | None = None, *, bus: Bus | None = None, clock: Clock | None = None
) -> FastAPI:
    """The alert service; ``bus`` lets the embedded mode share its bus, ``clock`` lets tests
    drive the notification timers."""
    cfg = AlertSettings.of(settings)
    ensure_telemetry("spm-alerts", cfg)
    lease = BusLease.of(cfg, bus)
    service = AlertService(cfg, lease.bus, clock)

    app = create_service_app(
        service="alerts",
        title="SPM Monitor — alerts",
        description="Alerts on indicators drifting from social targets; silences; notifications.",
        settings=cfg,
        routers=[alerts.router, silences.router, notifications.router, actions.router],
        lifespan=lifespan_of(service, lease),
        readiness=[service.ready],
    )
    app.state.alerts = service
    return app
