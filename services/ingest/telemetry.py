"""Telemetry set-up once per process (the app factory may run several times, e.g. in tests)."""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from services.common.settings import CommonSettings
from services.common.telemetry import setup_telemetry

_lock = threading.Lock()


def ensure_telemetry(settings: CommonSettings) -> None:
    """Install the SDK providers unless some are installed already (then keep them)."""
    with _lock:
        if not isinstance(trace.get_tracer_provider(), TracerProvider):
            setup_telemetry("spm-ingest", settings)
