"""schemathesis over the alerts API (tests/common/openapi_fuzz.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.alerts.app import create_app
from services.alerts.config import AlertSettings
from tests.alerts.servers import free_port
from tests.common.openapi_fuzz import KEYS, assert_fuzz_passes, serve_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_fuzz(kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path) -> None:
    env = serve_env(
        kafka_bootstrap,
        postgres_url,
        ALERTS_DB_SCHEMA=f"fuzz_alerts_{unique}",
        ALERTS_GROUP_ID=f"alerts-{unique}",
        ALERTS_INDICATORS_TOPIC=f"spm.indicators.v1-{unique}",
        ALERTS_OBJECTIVES_TOPIC=f"spm.objectives.v1-{unique}",
        ALERTS_TOPIC=f"spm.alerts.v1-{unique}",
        ALERTS_ACTIONS_TOPIC=f"spm.actions.v1-{unique}",
        ALERTS_DEADLETTER_TOPIC=f"spm.ingest.deadletter.v1-{unique}",
        ALERTS_SMTP_PORT=str(free_port()),
    )
    app = create_app(AlertSettings(api_keys=KEYS, database_url=postgres_url))
    await assert_fuzz_passes("alerts", app, env, tmp_path)
