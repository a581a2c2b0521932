"""schemathesis over the alerts API (tests/common/openapi_fuzz.py): no 5xx, answers as
documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.alerts.app import create_app
from services.alerts.config import AlertSettings
from tests.alerts.servers import free_port
from tests.common.openapi_fuzz import KEYS, fuzz_service

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_fuzz(kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_url,
        "ALERTS_DB_SCHEMA": f"fuzz_alerts_{unique}",
        "ALERTS_GROUP_ID": f"alerts-{unique}",
        "ALERTS_INDICATORS_TOPIC": f"spm.indicators.v1-{unique}",
        "ALERTS_OBJECTIVES_TOPIC": f"spm.objectives.v1-{unique}",
        "ALERTS_TOPIC": f"spm.alerts.v1-{unique}",
        "ALERTS_ACTIONS_TOPIC": f"spm.actions.v1-{unique}",
        "ALERTS_DEADLETTER_TOPIC": f"spm.ingest.deadletter.v1-{unique}",
        "ALERTS_SMTP_PORT": str(free_port()),
    }
    settings = AlertSettings(api_keys=KEYS, database_url=postgres_url)
    failures = await fuzz_service("alerts", create_app(settings), env, tmp_path)
    assert not failures, "\n\n".join(failures)
