"""Must-show of contract v1.1 corrections, end to end: Fineract messages with an undone-and-redone
disbursal and an undone write-off go through the running adapter (real Kafka and PostgreSQL);
what it publishes, fed to the indicator engine, gives on every day the same values as the stream
in which the undone disbursal and write-off never happened (fed the same way).

This needs the engine to cancel disbursals and write-offs by transaction id (docs/indicators.md,
"Corrections (contract v1.1)"): it is the engine's work, not the adapter's, that makes it pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import CanonicalEvent, from_kafka
from services.common.bus import MemoryBus
from services.indicators.config import IndicatorSettings
from tests.indicators.conftest import API_KEYS, Harness, started
from tests.indicators.oracle.harness import api_values
from tests.ingest.fineract.builders import (
    REPAYMENT_TYPE,
    WRITE_OFF_TYPE,
    client,
    loan_account,
    loan_event,
    transaction,
    transaction_event,
)
from tests.ingest.fineract.conftest import (
    fineract_env,
    fineract_records,
    produce,
    running_consumer,
    wait_outputs,
)
from tests.ingest.fineract.helpers import FineractEvent

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

FIRST, LAST = date(2026, 3, 1), date(2026, 12, 31)
FIELDS = ("value", "numerator", "denominator", "n")


def disbursal(n: int, loan: int, client_id: int, amount: str, day: str) -> FineractEvent:
    account = loan_account(loan, client_id, amount=amount, disbursed_on=day)
    return loan_event(n, "LoanDisbursalBusinessEvent", account, business_date=day)


def undo_disbursal(n: int, loan: int, client_id: int, day: str, type_: str) -> FineractEvent:
    account = loan_account(loan, client_id, amount="0", disbursed_on=day, status=200)
    return loan_event(n, type_, account, business_date=day)


def repayment(n: int, loan: int, txn: int, day: str, principal: str) -> FineractEvent:
    payload = transaction(
        loan, txn, type_=REPAYMENT_TYPE, day=day, amount=principal, principal=principal
    )
    return transaction_event(
        n, "LoanTransactionMakeRepaymentPostBusinessEvent", payload, business_date=day
    )


def write_off(n: int, loan: int, txn: int, day: str, type_: str) -> FineractEvent:
    payload = transaction(loan, txn, type_=WRITE_OFF_TYPE, day=day, amount="9000", principal="9000")
    return transaction_event(n, type_, payload, business_date=day)


def common() -> list[FineractEvent]:
    """Two clients; loan 801 of client 42 is never corrected."""
    return [
        client(1, 41, "2026-02-01"),
        client(2, 42, "2026-02-01"),
        disbursal(3, 801, 42, "5000", "2026-03-01"),
        repayment(4, 801, 7001, "2026-04-01", "1000"),
    ]


def corrected(undo_type: str) -> list[FineractEvent]:
    """Loan 800 disbursed with a wrong amount and date, undone, disbursed again; repaid; written
    off and the write-off undone."""
    written_off = loan_account(800, 41, amount="12000", disbursed_on="2026-03-05", status=601)
    return [
        *common(),
        disbursal(10, 800, 41, "20000", "2026-03-02"),
        undo_disbursal(11, 800, 41, "2026-03-04", undo_type),
        disbursal(12, 800, 41, "12000", "2026-03-05"),
        repayment(13, 800, 7100, "2026-04-05", "3000"),
        write_off(14, 800, 7200, "2026-08-01", "LoanWrittenOffPostBusinessEvent"),
        loan_event(15, "LoanStatusChangedBusinessEvent", written_off, business_date="2026-08-01"),
        write_off(16, 800, 7200, "2026-08-20", "LoanUndoWrittenOffBusinessEvent"),
        repayment(17, 800, 7101, "2026-09-05", "2000"),
    ]


def never_happened() -> list[FineractEvent]:
    return [
        *common(),
        disbursal(12, 800, 41, "12000", "2026-03-05"),
        repayment(13, 800, 7100, "2026-04-05", "3000"),
        repayment(17, 800, 7101, "2026-09-05", "2000"),
    ]


async def through_the_adapter(
    events: Sequence[FineractEvent],
    published: int,
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
) -> list[CanonicalEvent]:
    """What the running adapter publishes for these Fineract messages (``published`` events)."""
    async with fineract_env(kafka_bootstrap, postgres_url, unique) as s:
        await produce(kafka_bootstrap, s.fineract_topic, fineract_records(events))
        async with running_consumer(s):
            outputs = await wait_outputs(kafka_bootstrap, s, lambda o: len(o) >= published)
    assert not [o for o in outputs if "error.reason" in o.headers]
    assert len(outputs) == published
    ordered = sorted(
        (o for o in outputs if "ce_id" in o.headers), key=lambda o: (o.topic, o.offset)
    )
    return [from_kafka(o.value, list(o.headers.items())) for o in ordered]


@asynccontextmanager
async def engine(tmp_path: Path, name: str) -> AsyncIterator[Harness]:
    """The indicator service, embedded mode (in-process bus, SQLite)."""
    settings = IndicatorSettings(
        api_keys=API_KEYS,
        indicators_topic_suffix=f".{name}",
        indicators_group_id=f"indicators-{name}",
        indicators_emit_interval_seconds=0.2,
        indicators_gni_per_capita=Decimal("1000"),
        database_url=f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}",
    )
    async with started(settings, MemoryBus()) as h:
        yield h


async def values(h: Harness, events: Sequence[CanonicalEvent]) -> dict[Any, Any]:
    await h.send(events)
    await h.tick(LAST)
    out: dict[Any, Any] = {}
    day = FIRST
    while day <= LAST:
        for key, item in (await api_values(h.client, day)).items():
            out[(day, *key)] = tuple(item.get(f) for f in FIELDS)
        day += timedelta(days=3)
    return out


@pytest.mark.parametrize(
    "undo_type", ["LoanUndoDisbursalBusinessEvent", "LoanUndoLastDisbursalBusinessEvent"]
)
async def test_indicators_after_undo_equal_those_of_the_stream_without_the_mistake(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path, undo_type: str
) -> None:
    with_undo = await through_the_adapter(
        corrected(undo_type), 11, kafka_bootstrap, postgres_url, f"{unique}a"
    )
    without = await through_the_adapter(
        never_happened(), 7, kafka_bootstrap, postgres_url, f"{unique}b"
    )
    assert [e.type for e in with_undo].count("spm.loan.transaction_reversed.v1") == 2
    async with engine(tmp_path, "a") as a, engine(tmp_path, "b") as b:
        got, expected = await values(a, with_undo), await values(b, without)
    assert got.keys() == expected.keys()
    differ = {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}
    assert not differ, (
        f"{len(differ)} of {len(got)} cells differ, e.g. {sorted(differ.items())[:5]}"
    )
    glp = expected[(date(2026, 3, 4), "gross_loan_portfolio", "all")]
    assert glp[0] == 5000  # loan 801 only: the first disbursal of loan 800 never happened
