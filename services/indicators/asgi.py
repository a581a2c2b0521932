"""ASGI entry point of a worker process (``spm serve indicators --workers N``)."""

from __future__ import annotations

from services.common.runtime import tune_gc
from services.common.settings import get_settings
from services.indicators.app import create_app

app = create_app(get_settings())
tune_gc()
