"""schemathesis over the ingest API (tests/common/openapi_fuzz.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.common.openapi_fuzz import KEYS, assert_fuzz_passes
from tests.ingest.conftest import PEPPER
from tests.spm.test_cli_serve import _env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_fuzz(kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path) -> None:
    schema = f"fuzz_ingest_{unique}"
    env = _env(kafka_bootstrap, postgres_url, schema) | {"INGEST_TOPIC_SUFFIX": f"-{unique}"}
    settings = IngestSettings(api_keys=KEYS, pseudonym_pepper=PEPPER, ingest_db_schema=schema)
    await assert_fuzz_passes("ingest", create_app(settings), env, tmp_path)
