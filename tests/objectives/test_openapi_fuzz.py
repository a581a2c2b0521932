"""schemathesis over the objectives API (tests/common/openapi_fuzz.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.objectives.app import create_app
from services.objectives.config import ObjectivesSettings
from tests.common.openapi_fuzz import KEYS, assert_fuzz_passes, serve_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_fuzz(kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path) -> None:
    schema, topic = f"fuzz_obj_{unique}", f"test.objectives.{unique}"
    env = serve_env(
        kafka_bootstrap, postgres_url, OBJECTIVES_DB_SCHEMA=schema, OBJECTIVES_TOPIC=topic
    )
    settings = ObjectivesSettings(
        api_keys=KEYS,
        database_url=postgres_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        objectives_db_schema=schema,
        objectives_topic=topic,
    )
    await assert_fuzz_passes("objectives", create_app(settings), env, tmp_path)
