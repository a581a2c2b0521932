"""schemathesis over the indicators API (tests/common/openapi_fuzz.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.indicators.app import create_app
from services.indicators.config import IndicatorSettings
from tests.common.openapi_fuzz import KEYS, assert_fuzz_passes, serve_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_fuzz(kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path) -> None:
    env = serve_env(
        kafka_bootstrap,
        postgres_url,
        INDICATORS_DB_SCHEMA=f"fuzz_ind_{unique}",
        INDICATORS_TOPIC_SUFFIX=f".{unique}",
        INDICATORS_GROUP_ID=f"indicators-{unique}",
    )
    app = create_app(IndicatorSettings(api_keys=KEYS, database_url=postgres_url))
    await assert_fuzz_passes("indicators", app, env, tmp_path)
