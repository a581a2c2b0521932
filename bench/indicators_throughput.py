"""Throughput of the indicator engine against a raw Kafka consumer, in the same run.

1. Generate a realistic stream (tests/indicators/oracle/generator.py) and produce it to fresh,
   suffixed canonical topics.
2. Baseline: one raw aiokafka consumer process that only fetches and JSON-decodes every record
   of the same topics, with the engine's fetch settings, in a consumer group as the engine and
   without one; the faster is the baseline. Its clock starts when it has started, before the
   group join and the first fetch.
3. Engine: `spm serve indicators` as a subprocess with the service's default settings, on a
   fresh schema and consumer group, first with 1 worker, then with ``--workers N`` (default: one
   per CPU, printed above the last line); its rate is measured from the offsets it commits with
   its effects (exactly-once, in PostgreSQL) — from readiness (``/readyz`` 200, after start-up
   and migrations) to the last record, the first batch included; the former measure (from the
   first commit) is printed beside it. 300,000 events make 15 batches of 20,000: fewer
   make the first and last batch, which do not overlap with another, weigh too much. Each
   run's schema is dropped when it ends: its autovacuum would otherwise fall in the next run.
4. Rebuild: a fresh instance consumes a 1,000,000-event stream from the start until every offset
   is committed (every indicator rebuilt); prints the time and the service's peak RSS (VmHWM).

Last line, one process against one process:
``indicators_vs_raw_consumer per_process_ratio=<r> engine_1_process=<ev/s> raw_1_process=<ev/s>``.
Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (`make bench-indicators` starts local infra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.indicators.oracle.generator import GenConfig, generate  # noqa: E402
from tests.indicators.oracle.harness import (  # noqa: E402
    ServiceConfig,
    ServiceProcess,
    ensure_topics,
    produce,
    read_offsets,
)

TOPICS = ("spm.clients.v1", "spm.loans.v1", "spm.complaints.v1")
SERVICE_DEFAULTS = {"INDICATORS_EMIT_INTERVAL_SECONDS": "5", "INDICATORS_TICK_SECONDS": "60"}
"""The service's own defaults, over the test harness's quicker emitter and tick."""


def say(msg: str) -> None:
    print(msg, flush=True)


RAW_CONFIGS = {"in a consumer group, as the engine": True, "partitions assigned, no group": False}
BATCH_RECORDS = 20_000
"""The engine's ``INDICATORS_BATCH_SIZE`` default: the raw consumer fetches as much per poll."""


async def raw_consumer(bootstrap: str, suffix: str, total: int, group: str | None) -> float:
    """Events/s of one consumer process that fetches and JSON-decodes every record, nothing
    else, with the engine's fetch settings (services.common.bus.kafka). Its clock starts when
    the consumer has started, before the group join and the first fetch, as the engine's does at
    readiness."""
    consumer = AIOKafkaConsumer(
        *(t + suffix for t in TOPICS),
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=BATCH_RECORDS,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        isolation_level="read_committed",
        partition_assignment_strategy=(RangePartitionAssignor,),
    )
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH_RECORDS)
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                    seen += 1
        return total / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def until_ready(service: ServiceProcess, timeout_s: float = 120) -> float:
    """The moment ``/readyz`` first answers 200 (polled every 20 ms)."""
    deadline = time.perf_counter() + timeout_s
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as client:
        while time.perf_counter() < deadline:
            if not service.alive():
                raise SystemExit(f"service died:\n{service.last_log()}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return time.perf_counter()
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.02)
    raise SystemExit(f"not ready after {timeout_s} s:\n{service.last_log()}")


async def engine_run(
    cfg: ServiceConfig, ends: Mapping[tuple[str, int], int], timeout_s: float, workers: int = 1
) -> tuple[float, float, float, int]:
    """(events/s from readiness to the last offset committed, the first batch included; events/s
    from the first commit, the former measure; seconds from start to the end; peak RSS kB of
    its largest process)."""
    total = sum(ends.values())
    service = ServiceProcess(cfg, f"bench-{cfg.group}", args=("--workers", str(workers)))
    launched = time.perf_counter()
    service.start()
    ready = await until_ready(service)
    first: tuple[float, int] | None = None
    peak = 0
    # one connection for the whole run: a new one per look (engine, connection, a PostgreSQL
    # backend) took 3.2 ms of the bench's own CPU and 7 ms of wall time, five times a second
    db = create_async_engine(cfg.database_url, isolation_level="AUTOCOMMIT")
    try:
        async with db.connect() as conn:
            while True:
                stored = await read_offsets(conn, cfg.schema, cfg.group)
                now = time.perf_counter()
                done = sum(min(stored.get(tp, 0), end) for tp, end in ends.items())
                peak = max(peak, _rss_peak_kb(service))
                if first is None and done > 0:
                    first = (now, done)
                if done >= total:
                    break
                if not service.alive():
                    raise SystemExit(f"service died:\n{service.last_log()}")
                if now - launched > timeout_s:
                    raise SystemExit(f"engine at {done}/{total} after {timeout_s} s")
                await asyncio.sleep(0.2)
        assert first is not None
        elapsed = max(now - first[0], 1e-6)
        old = (total - first[1]) / elapsed if total > first[1] else total / (now - launched)
        rate = total / max(now - ready, 1e-6)
        return rate, old, now - launched, max(peak, _rss_peak_kb(service))
    finally:
        await db.dispose()
        service.stop()


async def drop_schema(database_url: str, schema: str) -> None:
    """Drop a finished run's tables, so that PostgreSQL's autovacuum of them (a few seconds of
    CPU for 300,000 events, due within a minute) does not run during the next measurement."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def _rss_peak_kb(service: ServiceProcess) -> int:
    """The largest VmHWM of the `spm` process and its worker processes (``--workers``)."""
    if service.proc is None:
        return 0
    pids = [service.proc.pid]
    try:
        children = Path(f"/proc/{pids[0]}/task/{pids[0]}/children").read_text().split()
        pids += [int(pid) for pid in children]
    except OSError:
        pass
    return max(map(_vm_hwm_kb, pids))


def _vm_hwm_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def stage(bootstrap: str, n: int, seed: int, suffix: str) -> dict[tuple[str, int], int]:
    t0 = time.perf_counter()
    events = generate(GenConfig(seed=seed, n_events=n))
    await ensure_topics(bootstrap, suffix)
    ends = await produce(bootstrap, events, suffix)
    say(f"generated and produced {sum(ends.values())} events in {time.perf_counter() - t0:.1f} s")
    return ends


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000, help="throughput stream size")
    parser.add_argument("--rebuild-events", type=int, default=1_000_000, help="0 = skip")
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="`spm serve indicators --workers N` (default: one per CPU); the 1-worker figure is "
        "printed as well (the raw consumer stays one process)",
    )
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database_url = os.environ.get("DATABASE_URL")
    if not bootstrap or not database_url:
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (make bench-indicators)")
    run = uuid.uuid4().hex[:8]
    logs = Path(tempfile.mkdtemp(prefix="bench-indicators-"))
    say(f"logs in {logs}")

    suffix = f"-bench-{run}"
    ends = await stage(bootstrap, args.events, 11, suffix)
    total = sum(ends.values())
    raws = {}
    for name, grouped in RAW_CONFIGS.items():
        group = f"raw-{run}" if grouped else None
        raws[name] = await raw_consumer(bootstrap, suffix, total, group)
    fastest = max(raws, key=lambda name: raws[name])
    raw = raws[fastest]
    for name, rate in raws.items():
        mark = " <- fastest, the baseline" if name == fastest else ""
        say(
            f"raw aiokafka consumer, 1 process, {name} (fetch + JSON decode): "
            f"{rate:,.0f} events/s{mark}"
        )
    engines: dict[int, float] = {}
    for workers in sorted({1, args.workers}):
        name = f"{run}-{workers}"
        cfg = ServiceConfig(
            bootstrap,
            database_url,
            suffix,
            f"bench-{name}",
            f"ind_bench_{name.replace('-', '_')}",
            logs,
            SERVICE_DEFAULTS,
        )
        engine, old, wall, _ = await engine_run(cfg, ends, args.timeout, workers)
        await drop_schema(database_url, cfg.schema)
        engines[workers] = engine
        say(
            f"engine, {workers} worker process(es) (exactly-once commits to PostgreSQL): "
            f"{engine:,.0f} events/s from readiness ({old:,.0f} from the first commit, the former "
            f"measure), {engine / raw:.3f} x one raw consumer process; {wall:.1f} s wall"
        )

    if args.rebuild_events:
        rsuffix = f"-rebuild-{run}"
        rends = await stage(bootstrap, args.rebuild_events, 12, rsuffix)
        rcfg = ServiceConfig(
            bootstrap,
            database_url,
            rsuffix,
            f"rebuild-{run}",
            f"ind_rebuild_{run}",
            logs,
            SERVICE_DEFAULTS,
        )
        _, _, rebuild_s, peak_kb = await engine_run(rcfg, rends, args.timeout)
        await drop_schema(database_url, rcfg.schema)
        say(
            f"rebuild of every indicator from {sum(rends.values()):,} events: {rebuild_s:.1f} s "
            f"(start to last offset committed); peak RSS {peak_kb / 1024:.0f} MiB"
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say(f"bench process (streaming generator + producer) peak RSS {own:.0f} MiB")
    one = engines[1]
    say(
        f"indicators_vs_raw_consumer per_process_ratio={one / raw:.3f} "
        f"engine_1_process={one:.0f} raw_1_process={raw:.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
