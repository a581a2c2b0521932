"""schemathesis over the indicators API (tests/common/openapi_fuzz.py): no 5xx, answers as
documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.indicators.app import create_app
from services.indicators.config import IndicatorSettings
from tests.common.openapi_fuzz import KEYS, fuzz_service

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_fuzz(kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_url,
        "INDICATORS_DB_SCHEMA": f"fuzz_ind_{unique}",
        "INDICATORS_TOPIC_SUFFIX": f".{unique}",
        "INDICATORS_GROUP_ID": f"indicators-{unique}",
    }
    settings = IndicatorSettings(api_keys=KEYS, database_url=postgres_url)
    failures = await fuzz_service("indicators", create_app(settings), env, tmp_path)
    assert not failures, "\n\n".join(failures)
