"""CSV import through the pipeline: good and bad rows, a report, and a re-run adds nothing."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from services.ingest.config import IngestSettings
from spm.cli import app as spm_app
from tests.ingest.conftest import TopicTail

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

EXAMPLES = Path(__file__).resolve().parents[2] / "services" / "ingest" / "examples"


def _env(settings: IngestSettings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "DATABASE_URL": settings.database_url,
        "PSEUDONYM_PEPPER": "csv-test-pepper-0123456789abcdef",
        "INGEST_DB_SCHEMA": settings.ingest_db_schema,
        "INSTITUTION_CURRENCY": "KES",
    }


async def test_csv_import_twice(
    ingest_settings: IngestSettings,
    drop_schema: None,
    kafka_bootstrap: str,
    tmp_path: Path,
    unique: str,
) -> None:
    data = tmp_path / "loans.csv"
    shutil.copy(EXAMPLES / "loans_disbursed.csv", data)
    mapping = tmp_path / "mapping.yaml"
    source = f"core:{unique}"
    text = (EXAMPLES / "loans_disbursed.mapping.yaml").read_text()
    mapping.write_text(text.replace("source: core:legacy", f"source: {source}"))
    tail = TopicTail(kafka_bootstrap)
    await tail.mark()
    runner = CliRunner()
    args = [
        "import",
        "csv",
        "--type",
        "spm.loan.disbursed.v1",
        "--mapping",
        str(mapping),
        str(data),
    ]

    first = await _invoke(runner, args, _env(ingest_settings))
    assert first.exit_code == 1, first.output  # some rows were rejected
    assert "5 rows: 3 accepted, 0 duplicates, 2 rejected" in first.output
    with (tmp_path / "loans.csv.rejected.csv").open() as handle:
        rejected = list(csv.DictReader(handle))
    assert {(r["row"], r["field"]) for r in rejected} == {
        ("5", "data.amount"),
        ("6", "data.disbursed_on"),
        ("6", "time"),
    }
    assert all(r["reason"] for r in rejected)

    second = await _invoke(runner, args, _env(ingest_settings))
    assert "5 rows: 0 accepted, 3 duplicates, 2 rejected" in second.output

    records = [r for r in await tail.read() if r.headers.get("ce_source") == source.encode()]
    assert sorted(r.headers["ce_id"].decode() for r in records) == [
        "L-1001:disbursed",
        "L-1002:disbursed",
        "L-1003:disbursed",
    ]
    for record in records:
        assert b"0712" not in (record.value or b"") and b"Amina" not in (record.value or b"")
    transactions = sorted(json.loads(r.value or b"{}")["transaction_id"] for r in records)
    assert transactions == [f"{source}:T-900{n}" for n in (1, 2, 3)]  # contract v1.1


async def _invoke(runner: CliRunner, args: list[str], env: dict[str, str]) -> Result:
    """The CLI runs its own event loop: run it in a worker thread."""
    return await asyncio.to_thread(runner.invoke, spm_app, args, env=env)
