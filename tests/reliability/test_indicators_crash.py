"""Kill -9 the indicator service while 200,000 events stream in (undone and redone disbursals and
write-offs among them); the values it ends with equal the oracle's exactly. And: two instances in
one consumer group, one killed, the survivor finishes with exact values. The service is a black
box here: a subprocess, its environment, its API."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from contracts.envelope import CanonicalEvent
from tests.indicators.oracle.generator import GenConfig, corrections, generate
from tests.indicators.oracle.harness import (
    GNI,
    ServiceConfig,
    ServiceProcess,
    business_date,
    compare_with_api,
    ensure_topics,
    log,
    produce,
    reader,
    report,
    sample_days,
    stored_offsets,
    wait_caught_up,
)
from tests.indicators.oracle.oracle import Oracle, Params
from tests.indicators.test_against_oracle import until_every_worker_owns_partitions

EVENTS = int(os.environ.get("SPM_CRASH_EVENTS", "200000"))
SEED = 777
KILLS = 6
CHUNK = 2000
PAUSE_S = 1.0  # spreads the stream over a couple of minutes, so kills land while it flows

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Stream:
    cfg: GenConfig
    events: list[CanonicalEvent]
    oracle: Oracle
    days: list[date]


@pytest.fixture(scope="module")
def stream() -> Iterator[Stream]:
    cfg = GenConfig(seed=SEED, n_events=EVENTS)
    events = list(generate(cfg))
    undo = corrections(events)  # undo-and-redo sequences are among what the kills interrupt
    assert min(undo.values()) > 0 and len(undo) == 4, undo
    oracle = Oracle(events, Params(gni_per_capita=GNI))
    assert oracle.business_date is not None
    first = cfg.start + (cfg.end - cfg.start) // 20
    days = sample_days(first, oracle.business_date, 8, SEED)
    yield Stream(cfg, events, oracle, days)


async def check_exact(stream: Stream, url: str) -> None:
    async with reader(url) as client:
        assert await business_date(client) == stream.oracle.business_date
    mismatches, compared = await compare_with_api(stream.oracle, url, stream.days)
    log(f"compared {compared} values on {len(stream.days)} days: {len(mismatches)} mismatches")
    assert not mismatches, report(mismatches, compared)


async def committed(database_url: str, cfg: ServiceConfig) -> int:
    return sum((await stored_offsets(database_url, cfg.schema, cfg.group)).values())


async def paced(
    kafka: str,
    stream: Stream,
    cfg: ServiceConfig,
    ends: dict[tuple[str, int], int],
    hurry: asyncio.Event,
) -> dict[tuple[str, int], int]:
    """The stream spread over minutes (so kills land while it flows) until ``hurry`` is set."""
    return await produce(
        kafka, stream.events, cfg.suffix, chunk=CHUNK, pause_s=PAUSE_S, ends=ends, hurry=hurry
    )


def config(kafka: str, pg: str, unique: str, tmp: Path, name: str) -> ServiceConfig:
    return ServiceConfig(
        kafka, pg, f"-{name}-{unique}", f"{name}-{unique}", f"ind_{name}_{unique}", tmp
    )


@pytest.mark.timeout(2400)
async def test_sigkill_at_random_moments_while_events_stream_in(
    stream: Stream, kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    cfg = config(kafka_bootstrap, postgres_url, unique, tmp_path, "crash")
    await ensure_topics(kafka_bootstrap, cfg.suffix)
    ends: dict[tuple[str, int], int] = {}
    hurry = asyncio.Event()
    producing = asyncio.create_task(paced(kafka_bootstrap, stream, cfg, ends, hurry))
    service = ServiceProcess(cfg)
    rng = random.Random(unique)
    # random moments spread over the whole run: when the engine has committed these many records
    moments = sorted(int(rng.uniform(0.02, 0.97) * len(stream.events)) for _ in range(KILLS))
    service.start()
    try:
        await service.wait_ready()
        for kill, moment in enumerate(moments, start=1):
            while (done := await committed(postgres_url, cfg)) < moment:
                assert service.alive(), service.last_log()
                await asyncio.sleep(rng.uniform(0.05, 0.5))
            service.kill()
            streaming = not producing.done()
            log(f"kill {kill}: SIGKILL after {done} records committed; streaming={streaming}")
            service.start()
            await service.wait_ready()
        hurry.set()  # the last kill is behind: the rest of the stream needs no pacing
        await producing
        took = await wait_caught_up(postgres_url, cfg.schema, cfg.group, ends, 1800, [service])
        log(f"caught up {took:.0f} s after the last kill; {sum(ends.values())} records")
        await check_exact(stream, service.url)
    finally:
        if not producing.done():
            producing.cancel()
        service.stop()


@pytest.mark.timeout(2400)
async def test_two_instances_one_killed_the_survivor_finishes_exactly(
    stream: Stream, kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    cfg = config(kafka_bootstrap, postgres_url, unique, tmp_path, "pair")
    await ensure_topics(kafka_bootstrap, cfg.suffix)
    first = ServiceProcess(cfg, "first")
    second = ServiceProcess(cfg, "second")
    first.start()
    await first.wait_ready()  # migrations done once, before the second one starts
    second.start()
    ends: dict[tuple[str, int], int] = {}
    hurry = asyncio.Event()
    producing = asyncio.create_task(paced(kafka_bootstrap, stream, cfg, ends, hurry))
    try:
        await second.wait_ready()
        await until_every_worker_owns_partitions(kafka_bootstrap, cfg.group, 2)
        before = await committed(postgres_url, cfg)
        while (done := await committed(postgres_url, cfg)) <= before:  # and work is committed
            assert first.alive() and second.alive(), second.last_log()
            await asyncio.sleep(0.2)
        assert first.alive() and second.alive()
        first.kill()
        hurry.set()  # the survivor takes the rest: no need to spread it over minutes
        log(f"killed the first instance after {done} records committed")
        await producing
        took = await wait_caught_up(postgres_url, cfg.schema, cfg.group, ends, 1800, [second])
        log(f"survivor caught up {took:.0f} s after the stream ended")
        await check_exact(stream, second.url)
    finally:
        if not producing.done():
            producing.cancel()
        first.stop()
        second.stop()
