"""The service is killed between sending a notification and recording it: after a restart the
notification goes out at most once more, with the same idempotency key."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from contracts.envelope import CanonicalEvent, to_kafka
from contracts.events import IndicatorChanged
from services.common.bus import KafkaBus, Message
from tests.alerts.harness import ACKER, API_KEYS, business_days, target
from tests.alerts.servers import Proc, SmtpServer, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def proc(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer, tmp_path: Path
) -> Iterator[Proc]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")},
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_url,
        "API_KEYS": API_KEYS,
        "ALERTS_DB_SCHEMA": f"alerts_{unique}",
        "ALERTS_GROUP_ID": f"alerts-{unique}",
        "ALERTS_INDICATORS_TOPIC": f"spm.indicators.v1-{unique}",
        "ALERTS_OBJECTIVES_TOPIC": f"spm.objectives.v1-{unique}",
        "ALERTS_TOPIC": f"spm.alerts.v1-{unique}",
        "ALERTS_ROUTES": json.dumps({"receivers": {"ops": {"email": ["ops@example.org"]}}}),
        "ALERTS_SMTP_HOST": "127.0.0.1",
        "ALERTS_SMTP_PORT": str(smtp.port),
        "ALERTS_GROUP_WAIT_S": "0",
        "ALERTS_FLUSH_INTERVAL_S": "0.2",
    }
    p = Proc(env, free_port(), tmp_path / "alerts.log")
    yield p
    p.stop()


async def _produce(kafka: str, unique: str, marker: bool = False) -> None:
    """A target and a value breaching it; ``marker``: another objective's target and its breach,
    whose notification (its own group) comes out after anything the first one still had to send."""
    bus = KafkaBus(kafka)
    producer = bus.producer()
    await producer.start()
    try:
        now = datetime.now(UTC)
        t = target(for_days=0)
        observed = Decimal("0.41")
        if marker:
            t = target("t-marker", indicator="active_clients", lower="100", for_days=0)
            t = t.model_copy(update={"objective_id": "obj-marker", "objective_code": "marker"})
            observed = Decimal("5")
        value = IndicatorChanged(
            code=t.indicator, segment="all", as_of=business_days(1)[0], value=observed,
            numerator=None, denominator=None, computed_at=now,
        )  # fmt: skip
        for topic, type_, data in (
            (f"spm.objectives.v1-{unique}", "spm.target.changed.v1", t),
            (f"spm.indicators.v1-{unique}", "spm.indicator.changed.v1", value),
        ):
            event = CanonicalEvent(
                id=str(uuid.uuid4()), source="spm:test", type=type_, time=now, data=data
            )
            record = to_kafka(event)
            await producer.send(Message(topic, record.value, record.key, tuple(record.headers)))
    finally:
        await producer.stop()
        await bus.close()


async def test_killed_between_send_and_record(
    proc: Proc, smtp: SmtpServer, kafka_bootstrap: str, unique: str
) -> None:
    proc.start(ALERTS_CRASH_AFTER_SEND="true")
    await proc.ready()
    await _produce(kafka_bootstrap, unique)
    assert proc.proc is not None
    for _ in range(1200):  # up to 2 minutes: a cold broker is slow to create topics and groups
        if proc.proc.poll() is not None:
            break
        await asyncio.sleep(0.1)
    assert proc.proc.returncode == -9, proc.log.read_text()[-3000:]
    assert len(smtp.messages) == 1  # it was sent, not recorded

    proc.start()
    await proc.ready()
    notes: list[dict[str, object]] = []
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{proc.port}", headers={"Authorization": f"Bearer {ACKER}"}
    ) as client:
        for _ in range(1200):  # up to 2 minutes: a cold broker is slow to create topics and groups
            notes = (await client.get("/v1/notifications")).json()
            if notes and notes[0]["status"] == "sent":
                break
            await asyncio.sleep(0.1)
        assert [n["status"] for n in notes] == ["sent"]
        first = notes[0]["id"]
        await _produce(kafka_bootstrap, unique, marker=True)  # after it, nothing else trickles in
        for _ in range(1200):
            notes = (await client.get("/v1/notifications")).json()
            if any(n["id"] != first and n["status"] == "sent" for n in notes):
                break
            await asyncio.sleep(0.1)
        assert len(notes) == 2 and [n["status"] for n in notes] == ["sent", "sent"], notes
        marker = next(n for n in notes if n["id"] != first)
    marked = f"<{marker['id']}@spm-monitor>"
    assert [m["Message-ID"] for m in smtp.messages].count(marked) == 1
    original = [m for m in smtp.messages if m["Message-ID"] != marked]
    assert 1 <= len(original) <= 2  # sent, not recorded; sent again at most once
    assert {m["Message-ID"] for m in original} == {f"<{first}@spm-monitor>"}
