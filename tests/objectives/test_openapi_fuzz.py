"""schemathesis over the objectives API (tests/common/openapi_fuzz.py): no 5xx, answers as
documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.objectives.app import create_app
from services.objectives.config import ObjectivesSettings
from tests.common.openapi_fuzz import KEYS, fuzz_service
from tests.objectives.conftest import drop_schema

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_fuzz(kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path) -> None:
    schema, topic = f"fuzz_obj_{unique}", f"test.objectives.{unique}"
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_url,
        "OBJECTIVES_DB_SCHEMA": schema,
        "OBJECTIVES_TOPIC": topic,
    }
    settings = ObjectivesSettings(
        api_keys=KEYS,
        database_url=postgres_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        objectives_db_schema=schema,
        objectives_topic=topic,
    )
    try:
        failures = await fuzz_service("objectives", create_app(settings), env, tmp_path)
    finally:
        await drop_schema(settings)
    assert not failures, "\n\n".join(failures)
