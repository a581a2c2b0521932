"""Strategy files: the sample round-trips through export unchanged; one bad target anywhere
changes nothing and the error names the line and the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from services.common.db import session_factory
from services.objectives import strategy
from services.objectives.app import build_service
from services.objectives.config import ObjectivesSettings
from services.objectives.models import outbox, versions
from services.objectives.store import ObjectivesService, migrate_schema, open_engine
from spm.cli import app as spm_app
from tests.objectives.conftest import drop_schema, make_settings

pytestmark = [pytest.mark.postgres]

SAMPLE = Path(__file__).resolve().parents[2] / "services/objectives/examples/strategy.yaml"


class Db:
    def __init__(self, settings: ObjectivesSettings, sessions: async_sessionmaker[AsyncSession]):
        self.settings = settings
        self.sessions = sessions
        self.service: ObjectivesService = build_service(settings)

    async def import_text(
        self, text: str, author: str = "board-secretary"
    ) -> strategy.ImportResult:
        async with self.sessions() as session, session.begin():
            return await strategy.apply(
                session, self.service, text, author=author, reason="board resolution 2025-12"
            )

    async def export(self) -> str:
        async with self.sessions() as session:
            return await strategy.export(session, self.service)

    async def counts(self) -> tuple[int, int]:
        async with self.sessions() as session:
            n_versions = await session.scalar(select(func.count()).select_from(versions))
            n_outbox = await session.scalar(select(func.count()).select_from(outbox))
        return int(n_versions or 0), int(n_outbox or 0)


@pytest.fixture
async def db(postgres_url: str, kafka_bootstrap: str) -> AsyncIterator[Db]:
    settings = make_settings(postgres_url, kafka_bootstrap)
    await migrate_schema(settings)
    engine = open_engine(settings)
    yield Db(settings, session_factory(engine))
    await engine.dispose()
    await drop_schema(settings)


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    return text.count("\n", 0, index) + 1


async def test_sample_strategy_round_trips_through_export(db: Db) -> None:
    sample = SAMPLE.read_text(encoding="utf-8")
    result = await db.import_text(sample)
    assert result.created == [
        "women-outreach",
        "poverty-outreach",
        "client-retention",
        "prevent-over-indebtedness",
        "complaints-handled",
    ]
    assert await db.export() == sample
    counts = await db.counts()
    assert counts == (5, 9)  # one version per objective, one event per target

    again = await db.import_text(sample)
    assert again.unchanged == result.created and not again.created and not again.updated
    assert await db.counts() == counts  # re-importing the same strategy changes nothing

    async with db.sessions() as session:
        objective = await db.service.find_by_code(session, "women-outreach")
        assert objective is not None
        history = await db.service.history(session, objective.id)
    assert [(v.author, v.reason) for v in history] == [
        ("board-secretary", "board resolution 2025-12")
    ]


async def test_changed_threshold_updates_in_place(db: Db) -> None:
    sample = SAMPLE.read_text(encoding="utf-8")
    await db.import_text(sample)
    async with db.sessions() as session:
        before = await db.service.find_by_code(session, "prevent-over-indebtedness")
    raised = sample.replace("threshold: 0.05\n", "threshold: 0.045\n", 1)
    result = await db.import_text(raised, author="risk-committee")
    assert result.updated == ["prevent-over-indebtedness"]
    assert await db.export() == raised
    async with db.sessions() as session:
        after = await db.service.find_by_code(session, "prevent-over-indebtedness")
        assert before is not None and after is not None
        history = await db.service.history(session, after.id)
    assert [t.id for t in after.targets] == [t.id for t in before.targets]  # same targets
    assert history[-1].author == "risk-committee"
    assert [(d.path, d.before, d.after) for d in history[-1].diff] == [
        (f"targets[{after.targets[0].id}].threshold", "0.05", "0.045")
    ]


@pytest.mark.parametrize(
    ("bad", "replacement", "field", "reason"),
    [
        # a field error (caught while parsing)
        (
            "indicator: dsti_breach_share",
            "indicator: dsti_breach_ratio",
            "objectives[3].targets[1].indicator",
            "unknown indicator code",
        ),
        # a rule error (caught by the service while applying; everything before it rolls back)
        (
            "warning_threshold: 0.93",
            "warning_threshold: 0.85",
            "objectives[4].targets[0].warning_threshold",
            "above the threshold",
        ),
    ],
)
async def test_one_bad_target_changes_nothing_and_names_the_line(
    db: Db, bad: str, replacement: str, field: str, reason: str
) -> None:
    sample = SAMPLE.read_text(encoding="utf-8")
    first = sample.replace("threshold: 0.60\n", "threshold: 0.61\n", 1)  # a valid change too
    await db.import_text(sample)
    exported, counts = await db.export(), await db.counts()

    broken = first.replace(bad, replacement, 1)
    with pytest.raises(strategy.StrategyInvalid) as caught:
        await db.import_text(broken)
    [error] = caught.value.errors
    assert error.field == field
    assert reason in error.reason
    assert error.line == _line_of(broken, replacement)
    assert await db.export() == exported
    assert await db.counts() == counts


async def test_duplicate_codes_are_refused(db: Db) -> None:
    sample = SAMPLE.read_text(encoding="utf-8")
    twice = sample.replace("code: poverty-outreach", "code: women-outreach")
    with pytest.raises(strategy.StrategyInvalid) as caught:
        await db.import_text(twice)
    [error] = caught.value.errors
    assert (error.line, error.field) == (
        _line_of(twice, "code: women-outreach", 2),
        "objectives[1].code",
    )
    assert await db.counts() == (0, 0)


def test_yaml_errors_name_the_line() -> None:
    with pytest.raises(strategy.StrategyInvalid) as caught:
        strategy.parse("version: 1\nobjectives:\n- code: x\n  name: [unclosed\n")
    assert caught.value.errors[0].line is not None
    with pytest.raises(strategy.StrategyInvalid) as caught:
        strategy.parse("version: 1\nobjectives:\n- code: x\n  name: X\n  dimension: D9\n")
    errors = {e.field: e.line for e in caught.value.errors}
    assert errors["objectives[0].dimension"] == 5
    assert errors["objectives[0].owner"] == 3  # missing: the objective's line


def test_cli_import_and_export(
    postgres_url: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import asyncio

    settings = make_settings(postgres_url, kafka_bootstrap)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("OBJECTIVES_DB_SCHEMA", settings.objectives_db_schema)
    monkeypatch.setenv("OBJECTIVES_TOPIC", settings.objectives_topic)
    runner = CliRunner()
    try:
        bad = tmp_path / "bad.yaml"
        sample = SAMPLE.read_text(encoding="utf-8")
        bad.write_text(sample.replace("segment: all", "segment: everywhere", 1))
        refused = runner.invoke(spm_app, ["objectives", "import", str(bad)])
        assert refused.exit_code == 1
        line = _line_of(sample, "segment: all")
        assert f"bad.yaml:line {line}: objectives[0].targets[0].segment:" in refused.stderr
        assert "nothing imported" in refused.stderr

        done = runner.invoke(
            spm_app, ["objectives", "import", str(SAMPLE), "--author", "spm-officer"]
        )
        assert done.exit_code == 0, done.output
        assert "5 objective(s) were created" in done.stdout
        exported = runner.invoke(spm_app, ["objectives", "export"])
        assert exported.exit_code == 0 and exported.stdout == sample
    finally:
        asyncio.run(drop_schema(settings))
