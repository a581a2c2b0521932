"""Ingest throughput: HTTP batch ingestion vs a raw aiokafka producer, same broker, same run.

    make bench-ingest          # starts the local infrastructure unless configured
    .venv/bin/python bench/ingest_throughput.py [--events 50000] [--clients 8] [--workers N]

The ingest service runs as its own process (``spm serve ingest --workers N``, by default one
worker per CPU as one would deploy it; a 1-worker run is measured too) on the Kafka and
PostgreSQL of ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``, with a throwaway database schema.
Several concurrent clients, each on its own keep-alive connection, POST batches of 1,000 events
to ``/v1/events/batch`` (bodies prepared up front). The kernel assigns each connection to a
worker (SO_REUSEPORT, see spm/workers.py), so with few connections the split can be uneven: the
CPU of each worker is printed. The baseline is one raw aiokafka producer process with the
bus's settings (idempotent, acks=all) sending the same canonical records (what ingest publishes
for those events) to the same topics, with the C murmur2 partitioner the bus uses and with
aiokafka's default one; the faster is the baseline. Both clocks start after a warm-up batch
(connections, metadata). Then single-event ``POST /v1/events`` latency is measured at a fixed
rate. The N-worker figure is printed above the last line, which compares one process with one
process::

    ingest_vs_raw_producer per_process_ratio=<r> ingest_1_process=<ev/s> raw_1_process=<ev/s>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from contracts.envelope import to_kafka
from services.common.auth import hash_key
from services.common.bus import partition_for_key
from services.common.db import create_engine
from services.ingest.pseudonym import Pseudonymiser
from services.ingest.validation import DateBounds, Validator
from tests.spm.procfs import until_every_worker_listens

ROOT = Path(__file__).resolve().parents[1]
PEPPER = "bench-pepper-0123456789abcdef012"
API_KEY = "bench-key"
BATCH = 1000
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def input_events(run: str, n: int) -> list[dict[str, Any]]:
    """A realistic mix: disbursals, repayments and registrations of many clients."""
    source = f"bench:{run}"
    events: list[dict[str, Any]] = []
    for i in range(n):
        client = f"C{i % 20_000}"
        kind = i % 4
        if kind == 0:
            type_, data = (
                "spm.loan.disbursed.v1",
                {
                    "loan_id": f"L{i}",
                    "client_id": client,
                    "branch_id": f"BR{i % 7}",
                    "product_id": "GROUP",
                    "officer_id": f"O{i % 50}",
                    "loan_cycle": 1 + i % 5,
                    "amount": "15000.00",
                    "currency": "KES",
                    "term_months": 12,
                    "disbursed_on": "2025-03-03",
                    "client_name": "not forwarded",
                },
            )
        elif kind == 3:
            type_, data = (
                "spm.client.registered.v1",
                {
                    "client_id": client,
                    "branch_id": f"BR{i % 7}",
                    "gender": "female",
                    "birth_year": 1990,
                    "rural": True,
                    "registered_on": "2025-03-01",
                },
            )
        else:
            type_, data = (
                "spm.loan.repayment.v1",
                {
                    "loan_id": f"L{i - kind}",
                    "client_id": client,
                    "transaction_id": f"T{i}",
                    "value_date": "2025-04-03",
                    "amount": "1400.00",
                    "principal_paid": "1250.00",
                    "interest_paid": "150.00",
                },
            )
        events.append(
            {
                "specversion": "1.0",
                "id": f"{run}-{i}",
                "source": source,
                "type": type_,
                "time": "2025-03-03T08:30:00+03:00",
                "data": data,
            }
        )
    return events


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(port: int, schema: str, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PSEUDONYM_PEPPER": PEPPER,
        "API_KEYS": json.dumps(
            [{"name": "bench", "sha256": hash_key(API_KEY), "scopes": ["ingest:write"]}]
        ),
        "INGEST_DB_SCHEMA": schema,
        "INSTITUTION_CURRENCY": "KES",
        "LOG_LEVEL": "WARNING",  # no access log line per batch on the bench's stdout
    }
    spm = Path(sys.executable).with_name("spm")
    cmd = [str(spm), "serve", "ingest", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


async def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"ingest server exited with {proc.returncode}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise SystemExit("ingest server did not become ready")


async def bench_ingest(base: str, bodies: list[bytes], clients: int) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post("/v1/events/batch", content=body, headers=headers)
            if response.status_code != 202 or response.json()["accepted"] != BATCH:
                raise SystemExit(f"ingest answered {response.status_code}: {response.text[:300]}")

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return time.perf_counter() - started


class CMurmur2Partitioner:
    """aiokafka's default partitioner with the bus's C murmur2 (same partitions, less CPU)."""

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)  # noqa: S311 - load spreading
        return all_partitions[partition_for_key(key, len(all_partitions))]


async def bench_raw(
    bootstrap: str, records: list[Any], warm: list[Any], partitioner: Any = None
) -> float:
    """Seconds to send ``records``; ``warm`` goes first, off the clock, like the ingest run's
    warm-up (connections, metadata of every topic)."""
    extra = {"partitioner": partitioner} if partitioner is not None else {}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        **extra,
    )
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(r.topic, r.value, key=r.key) for r in warm])
        started = time.perf_counter()
        for start in range(0, len(records), BATCH):
            futures = [
                await producer.send(r.topic, r.value, key=r.key, headers=r.headers)
                for r in records[start : start + BATCH]
            ]
            await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def bench_latency(base: str, run: str, rate: float, seconds: float) -> list[float]:
    events = input_events(f"{run}-lat", int(rate * seconds))
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    latencies: list[float] = []

    async def one(client: httpx.AsyncClient, body: bytes) -> None:
        started = time.perf_counter()
        response = await client.post("/v1/events", content=body, headers=headers)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 202:
            raise SystemExit(f"single POST answered {response.status_code}")

    limits = httpx.Limits(max_connections=500)
    timeout = httpx.Timeout(60, pool=None)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
        tasks = []
        t0 = time.perf_counter()
        for i, event in enumerate(events):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, json.dumps(event).encode())))
        await asyncio.gather(*tasks)
    return latencies


def canonical_records(events: list[dict[str, Any]]) -> list[Any]:
    """What ingest publishes for ``events`` (the strict codec: ``to_kafka`` of the canonical
    event, with a traceparent as the bus adds one)."""
    validator = Validator(Pseudonymiser(PEPPER), "KES", DateBounds(date(1970, 1, 1), 1))
    out = []
    for event in events:
        record = to_kafka(validator.canonical(event))
        headers = [*record.headers, ("traceparent", TRACEPARENT)]
        out.append(replace(record, headers=headers))
    return out


async def drop_schema(url: str, schema: str) -> None:
    engine = create_engine(url, schema)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def cpu_seconds(pid: int) -> list[float]:
    """User + system CPU of a process and of each of its children (the workers), from /proc."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    seconds = []
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return seconds


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument(
        "--clients",
        type=int,
        default=8,
        help="concurrent clients (connections); with 8 on 2 workers all land on one 1 time in 128",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="uvicorn worker processes of the ingest service (default: one per CPU); the "
        "1-worker figure is printed as well",
    )
    parser.add_argument("--rate", type=float, default=50.0, help="single POSTs per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database = os.environ.get("DATABASE_URL")
    if not bootstrap or not database:
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (make bench-ingest does)")
    run = uuid.uuid4().hex[:8]
    n = args.events // BATCH * BATCH
    records = canonical_records(input_events(f"{run}-raw", n))
    warm = canonical_records(input_events(f"{run}-wr", BATCH))
    raw: dict[str, tuple[float, float]] = {}  # configuration -> (seconds, CPU seconds)
    for name, partitioner in (
        ("C murmur2 partitioner, as the bus", CMurmur2Partitioner()),
        ("aiokafka's default partitioner", None),
    ):
        cpu = time.process_time()
        seconds = await bench_raw(bootstrap, records, warm, partitioner)
        raw[name] = (seconds, time.process_time() - cpu)
    fastest = min(raw, key=lambda name: raw[name][0])
    runs = sorted({1, args.workers})
    results = {w: await ingest_run(bootstrap, database, f"{run}w{w}", n, w, args) for w in runs}
    latencies = results[args.workers][2]
    raw_rate = n / raw[fastest][0]
    print(f"events={n} batch={BATCH} clients={args.clients} workers={args.workers}")
    for name, (seconds, cpu) in raw.items():
        mark = " <- fastest, the baseline" if name == fastest else ""
        print(
            f"raw aiokafka producer, 1 process ({name}): {seconds:.2f} s, {n / seconds:,.0f} "
            f"events/s, CPU {cpu * 1e6 / n:.0f} us/event{mark}"
        )
    for workers, (seconds, cpu, _) in results.items():
        split = ", ".join(f"{c:.1f}" for c in cpu[1:]) if workers > 1 else ""
        print(
            f"ingest HTTP batches, {workers} worker process(es): {seconds:.2f} s, "
            f"{n / seconds:,.0f} events/s, server CPU {sum(cpu) * 1e6 / n:.0f} us/event"
            + (f" (CPU s per worker: {split})" if split else "")
        )
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"single POST /v1/events at {args.rate:.0f}/s for {args.seconds:.0f} s "
        f"({args.workers} workers): p50={pct(latencies, 0.5) * 1000:.1f} ms "
        f"p99={pct(latencies, 0.99) * 1000:.1f} ms "
        f"mean={statistics.fmean(latencies) * 1000:.1f} ms n={len(latencies)}"
    )
    if args.workers > 1:
        many = n / results[args.workers][0]
        print(
            f"ingest with {args.workers} worker processes: {many:,.0f} events/s = "
            f"{many / raw_rate:.3f} x one raw producer process ({many / args.workers:,.0f} "
            "events/s per process)"
        )
    one = n / results[1][0]
    print(
        f"ingest_vs_raw_producer per_process_ratio={one / raw_rate:.3f} "
        f"ingest_1_process={one:.0f} raw_1_process={raw_rate:.0f}"
    )


async def ingest_run(
    bootstrap: str, database: str, run: str, n: int, workers: int, args: argparse.Namespace
) -> tuple[float, list[float], list[float]]:
    """(seconds for ``n`` events in batches, CPU seconds of the server process and of each
    worker, single-event latencies)."""
    schema = f"bench_ingest_{run}"
    events = input_events(run, n)
    bodies = [json.dumps(events[i : i + BATCH]).encode() for i in range(0, n, BATCH)]
    port = free_port()
    proc = start_server(port, schema, workers)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, proc)
        if workers > 1:
            await until_every_worker_listens(proc.pid, port, workers)
        warm = [json.dumps(input_events(f"{run}-w{i}", BATCH)).encode() for i in range(workers)]
        await bench_ingest(base, warm, workers)  # connections, metadata, caches of every worker
        before = cpu_seconds(proc.pid)
        ingest_s = await bench_ingest(base, bodies, args.clients)
        server_cpu = [b - a for a, b in zip(before, cpu_seconds(proc.pid), strict=True)]
        latencies = await bench_latency(base, run, args.rate, args.seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        await drop_schema(database, schema)
    return ingest_s, server_cpu, latencies


if __name__ == "__main__":
    asyncio.run(main())
