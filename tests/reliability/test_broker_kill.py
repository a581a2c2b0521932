"""One broker of three SIGKILLed while ingest and the indicator engine (``spm serve``
processes) work at a steady rate, and restarted later: every event ingest answered 202 for is
on its topic exactly once, and the engine's values equal the independent oracle's computed from
those very records. Runs on a three-broker KRaft cluster of its own (``SPM_KAFKA_BROKERS=3``)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTP

from contracts.envelope import CanonicalEvent, from_kafka
from contracts.topics import CLIENTS, COMPLAINTS, LOANS
from services.common.auth import hash_key
from services.common.bus import KafkaBus
from spm.simulator import SimConfig
from spm.simulator.runner import run
from spm.simulator.sinks import HttpSink
from tests.alerts.servers import REPO, Proc, free_port
from tests.indicators.oracle.harness import (
    GNI,
    READER_KEY,
    compare_with_api,
    log,
    report,
    sample_days,
    stored_offsets,
)
from tests.indicators.oracle.oracle import Oracle, Params
from tests.infra import STABLE_PORTS, OwnInfra, own_infra

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

ADMIN = "broker-kill-admin"
PEPPER = "broker-kill-pepper-0123456789abcdef"
DAYS = 120
VICTIM = 2
TOPICS = (CLIENTS.name, LOANS.name, COMPLAINTS.name)


def _port_block(count: int) -> int:
    """A base port with ``count`` free consecutive ports (node i uses base + 2(i-1) and + 1)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(STABLE_PORTS.start, STABLE_PORTS.stop - count, 2)
        try:
            socks = []
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports")


@pytest.fixture(scope="module")
def cluster() -> Iterator[OwnInfra]:
    run_dir = tempfile.mkdtemp(prefix="spm-cluster-")
    base = _port_block(6)
    passed = ("SPM_CACHE_DIR", "SPM_KAFKA_VERSION", "SPM_PG_BIN", "SPM_KAFKA_HEAP")
    infra = own_infra(
        {
            "SPM_KAFKA_BROKERS": "3",
            "SPM_RUN_DIR": run_dir,
            "SPM_KAFKA_PORT": str(base),
            "SPM_KAFKA_CONTROLLER_PORT": str(base + 1),
            "SPM_PG_PORT": str(free_port()),
            **{n: os.environ[n] for n in passed if os.environ.get(n)},
        }
    )
    yield infra
    infra.down()
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def services(cluster: OwnInfra, unique: str, tmp_path: Path) -> Iterator[dict[str, Proc]]:
    skip = ("INGEST_", "INDICATORS_", "OBJECTIVES_", "ALERTS_", "FINERACT_", "KAFKA_", "DATABASE_")
    keys = [
        {"name": "admin", "sha256": hash_key(ADMIN), "scopes": ["admin"]},
        {"name": "oracle", "sha256": hash_key(READER_KEY), "scopes": ["indicators:read"]},
    ]
    env = {
        **{k: v for k, v in os.environ.items() if not k.upper().startswith(skip)},
        "PYTHONPATH": str(REPO),
        "KAFKA_BOOTSTRAP_SERVERS": cluster.exports["KAFKA_BOOTSTRAP_SERVERS"],
        "DATABASE_URL": cluster.exports["DATABASE_URL"],
        "API_KEYS": json.dumps(keys),
        "PSEUDONYM_PEPPER": PEPPER,
        "INGEST_DB_SCHEMA": f"ingest_{unique}",
        "INDICATORS_DB_SCHEMA": f"indicators_{unique}",
        "INDICATORS_GROUP_ID": f"indicators-{unique}",
        "INDICATORS_GNI_PER_CAPITA": str(GNI),
        "INDICATORS_TICK_SECONDS": "1",
        "INDICATORS_EMIT_INTERVAL_SECONDS": "2",
    }
    procs = {s: Proc(env, free_port(), tmp_path / f"{s}.log", s) for s in ("ingest", "indicators")}
    yield procs
    for p in procs.values():
        p.stop()


async def read_all(bootstrap: str) -> tuple[list[CanonicalEvent], dict[tuple[str, int], int]]:
    """Every committed record of the canonical topics, and the end of each partition."""
    bus = KafkaBus(bootstrap)
    tps = [KafkaTP(t, p) for t in TOPICS for p in range(await bus.partition_count(t))]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        events: list[CanonicalEvent] = []
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for records in batches.values():
                events += [from_kafka(r.value, r.headers) for r in records]
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return events, {(tp.topic, tp.partition): end for tp, end in ends.items() if end}
    finally:
        await consumer.stop()


async def test_a_broker_killed_and_restarted_loses_and_doubles_nothing(
    cluster: OwnInfra, services: dict[str, Proc], unique: str
) -> None:
    for p in services.values():
        p.start()
    for p in services.values():
        await p.ready(within=180)
    config = SimConfig(seed=4242, days=DAYS, source=f"sim:{unique}")
    ingest = f"http://127.0.0.1:{services['ingest'].port}"
    async with httpx.AsyncClient(base_url=ingest, timeout=120) as client:
        sink = HttpSink(ingest, ADMIN, client=client, batch_size=200, retries=120)
        feeding = asyncio.create_task(run(config, sink))
        # kill once the stream flows, restart once it has flowed on without the broker
        while sink.accepted < 2000:
            assert not feeding.done(), "the stream ended before the kill"
            await asyncio.sleep(0.1)
        await asyncio.to_thread(cluster.run, "kafka-kill", str(VICTIM))
        killed_at = sink.accepted
        log(f"broker {VICTIM} SIGKILLed after {killed_at} events accepted")
        while sink.accepted < killed_at + 3000:
            if feeding.done():
                break
            await asyncio.sleep(0.1)
        log(f"{sink.accepted - killed_at} events accepted with broker {VICTIM} down")
        await asyncio.to_thread(cluster.run, "kafka-start-node", str(VICTIM))
        log(f"broker {VICTIM} back after {sink.accepted} events accepted")
        stats = await feeding
    assert sink.accepted > killed_at + 3000, "the kill did not land while events streamed in"
    assert sink.accepted + sink.duplicates == stats.events

    bootstrap = cluster.exports["KAFKA_BOOTSTRAP_SERVERS"]
    events, ends = await read_all(bootstrap)
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids), "an event is on its topic twice"
    # A batch answered 503 while the partition leaders moved may have reached Kafka all the same;
    # its retry is then answered 202 with those events as duplicates: on the topic once either way.
    log(f"{sink.accepted} accepted, {sink.duplicates} duplicates (retried), {len(ids)} on topics")
    assert len(ids) == stats.events, (len(ids), stats.events)

    database = cluster.exports["DATABASE_URL"]
    schema, group = f"indicators_{unique}", f"indicators-{unique}"
    deadline = asyncio.get_running_loop().time() + 300
    while True:
        stored = await stored_offsets(database, schema, group)
        if all(stored.get(tp, 0) >= end for tp, end in ends.items()):
            break
        assert services["indicators"].proc is not None
        assert services["indicators"].proc.poll() is None, services["indicators"].log.read_text()
        assert asyncio.get_running_loop().time() < deadline, (stored, ends)
        await asyncio.sleep(0.5)

    oracle = Oracle(events, Params(gni_per_capita=GNI))
    assert oracle.business_date is not None
    days = sample_days(config.start + (oracle.business_date - config.start) // 4,
                       oracle.business_date, 6, 4242)  # fmt: skip
    url = f"http://127.0.0.1:{services['indicators'].port}"
    for _ in range(60):  # the engine emits on its interval: wait for the last day's values
        mismatches, compared = await compare_with_api(oracle, url, days)
        if not mismatches:
            break
        await asyncio.sleep(1)
    log(f"compared {compared} values on {len(days)} days: {len(mismatches)} mismatches")
    assert compared > 0 and not mismatches, report(mismatches, compared)
