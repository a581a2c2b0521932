"""Telemetry set-up once per process (the app factory may run several times, e.g. in tests)."""

from __future__ import annotations

from services.common.settings import CommonSettings
from services.common.telemetry import ensure_telemetry as _ensure


def ensure_telemetry(settings: CommonSettings) -> None:
    """Install the SDK providers as ``spm-ingest`` unless some are installed already."""
    _ensure("spm-ingest", settings)
