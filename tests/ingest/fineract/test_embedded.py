"""The embedded mode: in-process bus and SQLite, started the way the ingest lifespan does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.common.bus import MemoryBus, Message
from services.ingest.fineract.config import FineractSettings
from services.ingest.fineract.running import fineract_consumer_running
from tests.ingest.fineract.conftest import PEPPER
from tests.ingest.fineract.helpers import manifest, sample_bytes


async def test_samples_flow_on_the_in_process_bus_with_sqlite(tmp_path: Path) -> None:
    bus = MemoryBus()
    bus.create_topic("external-events", 3)
    producer = bus.producer()
    await producer.start()
    await producer.send_many(
        [
            Message("external-events", sample_bytes(e), bytes.fromhex(e["kafka_key_hex"]))
            for e in manifest()
        ]
    )
    await producer.stop()
    settings = FineractSettings(
        kafka_bootstrap_servers=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}",
        pseudonym_pepper=PEPPER,
        institution_currency="KES",
        fineract_enabled=True,
    )
    async with fineract_consumer_running(settings, bus) as consumer:
        assert consumer is not None
        for _ in range(200):
            if consumer.relay.published >= 4:
                break
            await asyncio.sleep(0.05)
        assert consumer.totals.published == 4
    loans = await bus.tail("spm.loans.v1", 10)
    clients = await bus.tail("spm.clients.v1", 10)
    types = sorted(dict(r.headers)["ce_type"].decode() for r in loans + clients)
    assert types == [
        "spm.client.registered.v1",
        "spm.loan.delinquency.v1",
        "spm.loan.disbursed.v1",
        "spm.loan.repayment.v1",
    ]


async def test_disabled_by_default(tmp_path: Path) -> None:
    settings = FineractSettings(
        kafka_bootstrap_servers=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}",
        pseudonym_pepper=PEPPER,
    )
    async with fineract_consumer_running(settings, MemoryBus()) as consumer:
        assert consumer is None
