"""Kill -9 the Fineract consumer while it works through thousands of messages, restart it:
every mapped event is on the canonical topics exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.ingest.fineract.config import FineractSettings
from tests.ingest.fineract.conftest import (
    Out,
    env_of,
    fineract_env,
    fineract_records,
    produce,
    read_outputs,
)
from tests.ingest.fineract.helpers import FineractEvent, renumbered, sample_events

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STORIES = 600  # x 6 messages = 3,600 Fineract messages (+ resent duplicates)
KILLS = 4
CANONICAL_ONE_TO_ONE = (
    "ClientCreateBusinessEvent",
    "LoanDisbursalBusinessEvent",
    "LoanTransactionMakeRepaymentPostBusinessEvent",
)


def stories() -> tuple[list[FineractEvent], set[str]]:
    """Per borrower: create, activate, disburse, disbursal txn, repay, COB bulk; and the ids of
    the canonical events they must yield."""
    samples = sample_events()
    events: list[FineractEvent] = []
    expected: set[str] = set()
    n = 10_000
    for i in range(STORIES):
        client, loan = 100_000 + i, 500_000 + i
        for sample in samples:
            n += 1
            event = renumbered(sample, n, client=client, loan=loan)
            events.append(event)
            key = event.envelope["idempotencyKey"]
            kind = event.type
            if kind in CANONICAL_ONE_TO_ONE:
                expected.add(key)
            elif kind == "BulkBusinessEvent":
                expected.add(f"{key}#1")
    return events, expected


async def outputs_reach(
    bootstrap: str, settings: FineractSettings, count: int, marker: str | None = None
) -> list[Out]:
    """The canonical outputs, once there are ``count`` of them (and ``marker`` among them)."""
    outputs: list[Out] = []
    for _ in range(600):
        outputs = [o for o in await read_outputs(bootstrap, settings) if "ce_id" in o.headers]
        if len(outputs) >= count and (marker is None or marker in {o.id for o in outputs}):
            return outputs
        await asyncio.sleep(0.2)
    raise AssertionError(f"{len(outputs)} outputs, expected {count} (marker {marker})")


def start(settings: FineractSettings) -> subprocess.Popen[bytes]:
    env = {**os.environ, **env_of(settings), "FINERACT_MAX_RECORDS": "40"}
    return subprocess.Popen(
        [sys.executable, "-m", "services.ingest.fineract"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
async def settings(
    kafka_bootstrap: str, postgres_url: str, unique: str
) -> AsyncIterator[FineractSettings]:
    async with fineract_env(kafka_bootstrap, postgres_url, unique) as s:
        yield s


async def test_kill_9_and_restart_publishes_each_event_exactly_once(
    kafka_bootstrap: str, settings: FineractSettings, unique: str
) -> None:
    events, expected = stories()
    records = fineract_records(events)
    rng = random.Random(unique)
    resent = rng.sample(records, len(records) // 10)  # Fineract's at-least-once resends
    await produce(kafka_bootstrap, settings.fineract_topic, records[: len(records) // 2])

    killed_midway = 0
    for kill in range(KILLS):
        proc = start(settings)
        try:
            if kill == 1:
                await produce(
                    kafka_bootstrap, settings.fineract_topic, records[len(records) // 2 :]
                )
            if kill == 2:
                await produce(kafka_bootstrap, settings.fineract_topic, resent)
            target = len(expected) * (kill + 1) // (KILLS + 1) + rng.randrange(50)
            for _ in range(600):
                seen = len(
                    [
                        o
                        for o in await read_outputs(kafka_bootstrap, settings)
                        if "ce_id" in o.headers
                    ]
                )
                if seen >= target or proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.random() * 0.3)  # somewhere inside a batch or a relay
            assert proc.poll() is None, "the consumer died on its own"
            if seen < len(expected):
                killed_midway += 1
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    proc = start(settings)
    try:
        await outputs_reach(kafka_bootstrap, settings, len(expected))
        # Anything extra (a row relayed again late) comes out before a marker sent now: the
        # outbox is relayed in order, so once the marker is out, nothing older is still to come.
        marker = renumbered(
            next(e for e in sample_events() if e.type == "ClientCreateBusinessEvent"),
            99_999_999,
            client=999_999,
            loan=999_999,
        )
        marker_id = marker.envelope["idempotencyKey"]
        await produce(kafka_bootstrap, settings.fineract_topic, fineract_records([marker]))
        outputs = await outputs_reach(kafka_bootstrap, settings, len(expected) + 1, marker_id)
        outputs = [o for o in outputs if o.id != marker_id]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, "clean shutdown on SIGTERM"

    assert killed_midway >= 2, "the kills must land while work is in progress"
    counts = Counter(o.id for o in outputs)
    twice = [event_id for event_id, n in counts.items() if n > 1]
    assert twice == [], f"{len(twice)} events published more than once"
    assert set(counts) == expected
    dead = [o for o in await read_outputs(kafka_bootstrap, settings) if "error.reason" in o.headers]
    assert dead == []
