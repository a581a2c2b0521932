"""ASGI entry point for process managers (``uvicorn services.ingest.asgi:app --workers N``)."""

from __future__ import annotations

from services.common.runtime import tune_gc
from services.ingest.app import create_app
from services.ingest.config import get_ingest_settings

app = create_app(get_ingest_settings())
tune_gc()
