"""End-to-end alert latency: from the ingest API's 202 for an event that breaks a target to the
e-mail's arrival at an SMTP server, with the four services as separate processes.

1. Start ingest, indicators, objectives and alerts (`spm serve X`) on fresh schemas, consumer
   groups and topics where the services allow it, with `for_days` 0, `group_wait` 0 and
   `group_interval` 0; the polling intervals (indicator emitter, alert flush) keep the services'
   defaults unless ``--emit-interval`` / ``--flush-interval`` set them.
2. Background load: a steady stream of healthy events (a control branch) at ``--rate`` events/s.
3. Samples: for each sample a fresh branch gets a target (women_borrower_share ≥ 0.5) through
   the objectives API and a registered male client; then one loan disbursement — the breaking
   event — is posted; latency = e-mail arrival − the 202 of that post.
4. Baseline, same run: the round trip of one event through the ingest API alone (202 time).

Every topic is fresh (suffixed with the run's id), so no history is replayed; the first sample
is a warm-up (connections, caches) and is printed but not counted.

A sample whose e-mail does not arrive within 30 s counts as infinitely late (its percentile may
print ``inf``), never left out; how many there were is printed.

Last line: ``e2e_alert_latency p50=<s> p99=<s> missing=<n> rate=<events/s>``.
Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (`make bench-e2e` starts local infra).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.auth import hash_key  # noqa: E402
from tests.alerts.servers import REPO, Proc, free_port  # noqa: E402

ADMIN = "bench-admin-secret"


class Inbox:
    """SMTP handler recording each message's subject and arrival time."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        now = time.monotonic()
        folded = str(email.message_from_bytes(envelope.content)["Subject"])
        subject = folded.replace("\r", "").replace("\n", "")
        with self.lock:
            self.arrivals.setdefault(subject, now)
        return "250 OK"

    def find(self, needle: str) -> float | None:
        with self.lock:
            return next((t for s, t in self.arrivals.items() if needle in s), None)


class ValueWatch:
    """When each ``code|segment`` value reached the indicator topic (splits the latency into
    ingest -> indicator value, and value -> e-mail)."""

    def __init__(self) -> None:
        self.arrivals: dict[bytes, list[float]] = {}

    async def run(self, bootstrap: str, topic: str, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                now = time.monotonic()
                for records in batches.values():
                    for record in records:
                        self.arrivals.setdefault(record.key or b"", []).append(now)
        finally:
            await consumer.stop()

    def first_after(self, key: bytes, t0: float) -> float | None:
        return next((t for t in self.arrivals.get(key, []) if t >= t0), None)


def event(u: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0", "id": f"{u}-{uuid.uuid4().hex}", "source": f"bench:{u}",
        "type": type_, "time": "2025-06-02T09:00:00+00:00", "data": data,
    }  # fmt: skip


def registration(u: str, client: str, branch: str, gender: str) -> dict[str, Any]:
    return event(u, "spm.client.registered.v1", {
        "client_id": client, "branch_id": branch, "gender": gender,
        "registered_on": "2025-06-02"})  # fmt: skip


def loan(u: str, client: str, branch: str) -> dict[str, Any]:
    return event(u, "spm.loan.disbursed.v1", {
        "loan_id": f"l-{client}", "client_id": client, "branch_id": branch, "product_id": "P1",
        "amount": "1000.00", "currency": "KES", "disbursed_on": "2025-06-02"})  # fmt: skip


def environment(u: str, smtp_port: int, polling: dict[str, str]) -> dict[str, str]:
    """Fresh names for this run; intervals as the services default unless ``polling`` says."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ALERTS_", "INDICATORS_"))},
        "PYTHONPATH": str(REPO),
        "API_KEYS": json.dumps([{"name": "admin", "sha256": hash_key(ADMIN), "scopes": ["admin"]}]),
        "PSEUDONYM_PEPPER": "bench-pepper-0123456789abcdef012",
        "INGEST_DB_SCHEMA": f"ingest_{u}",
        "INGEST_TOPIC_SUFFIX": f"-{u}",  # fresh canonical topics: no history to catch up on
        "INDICATORS_TOPIC_SUFFIX": f"-{u}",
        "INDICATORS_DB_SCHEMA": f"indicators_{u}",
        "INDICATORS_GROUP_ID": f"indicators-{u}",
        "OBJECTIVES_DB_SCHEMA": f"objectives_{u}",
        "OBJECTIVES_TOPIC": f"spm.objectives.v1-{u}",
        "ALERTS_DB_SCHEMA": f"alerts_{u}",
        "ALERTS_GROUP_ID": f"alerts-{u}",
        "ALERTS_OBJECTIVES_TOPIC": f"spm.objectives.v1-{u}",
        "ALERTS_INDICATORS_TOPIC": f"spm.indicators.v1-{u}",
        "ALERTS_TOPIC": f"spm.alerts.v1-{u}",
        "ALERTS_SMTP_HOST": "127.0.0.1",
        "ALERTS_SMTP_PORT": str(smtp_port),
        "ALERTS_GROUP_WAIT_S": "0",
        "ALERTS_GROUP_INTERVAL_S": "0",
        **polling,
    }


async def load(client: httpx.AsyncClient, url: str, u: str, rate: int, stop: asyncio.Event,
               sent: list[int]) -> None:  # fmt: skip
    """Healthy control-branch events at ``rate`` events/s, in 10 batches a second."""
    per_batch = max(2, rate // 10) // 2
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        batch: list[dict[str, Any]] = []
        for _ in range(per_batch):
            n += 1
            gender = "female" if n % 2 else "male"
            batch += [
                registration(u, f"ctl{n}", f"CTL-{u}", gender),
                loan(u, f"ctl{n}", f"CTL-{u}"),
            ]
        r = await client.post(url, json=batch)
        if r.status_code == 202:
            sent[0] += len(batch)
        next_at += 0.1
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=500, help="background events per second")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument(
        "--emit-interval", type=float, help="INDICATORS_EMIT_INTERVAL_SECONDS (default: 5)"
    )
    parser.add_argument("--flush-interval", type=float, help="ALERTS_FLUSH_INTERVAL_S (default: 1)")
    args = parser.parse_args()
    polling = {
        name: str(value)
        for name, value in (
            ("INDICATORS_EMIT_INTERVAL_SECONDS", args.emit_interval),
            ("ALERTS_FLUSH_INTERVAL_S", args.flush_interval),
        )
        if value is not None
    }
    u = uuid.uuid4().hex[:8]
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    logs = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    env = environment(u, smtp.port, polling)
    procs = {s: Proc(env, free_port(), logs / f"{s}.log", s)
             for s in ("ingest", "indicators", "objectives", "alerts")}  # fmt: skip
    try:
        for p in procs.values():
            p.start()
        for p in procs.values():
            await p.ready(within=180)
        base = {s: f"http://127.0.0.1:{p.port}" for s, p in procs.items()}
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as c:
            ingest = f"{base['ingest']}/v1/events/batch"
            # baseline: one event through the ingest API alone
            baseline = []
            for i in range(20):
                t0 = time.monotonic()
                r = await c.post(ingest, json=[registration(u, f"b{i}", f"BASE-{u}", "female")])
                baseline.append(time.monotonic() - t0)
            stop, sent = asyncio.Event(), [0]
            watch = ValueWatch()
            watcher = asyncio.create_task(
                watch.run(os.environ["KAFKA_BOOTSTRAP_SERVERS"], f"spm.indicators.v1-{u}", stop)
            )
            upstream: list[float] = []
            loader = asyncio.create_task(load(c, ingest, u, args.rate, stop, sent))
            started = time.monotonic()
            latencies: list[float] = []
            warm = True  # the first sample waits for the services to catch up with history
            i = -1
            while len(latencies) < args.samples and i < args.samples * 2:
                i += 1
                branch = f"S{i}-{u}"
                r = await c.post(f"{base['objectives']}/v1/objectives", json={
                    "code": f"bench-{u}-{i}", "name": f"Sample {i}", "dimension": "D1",
                    "owner": "bench", "targets": [{
                        "indicator": "women_borrower_share", "segment": f"branch:{branch}",
                        "direction": "at_least", "threshold": "0.5", "for_days": 0,
                        "severity": "critical", "notify": ["ops@example.org"],
                        "effective_from": "2025-01-01"}]})  # fmt: skip
                r.raise_for_status()
                await c.post(ingest, json=[registration(u, f"s{i}", branch, "male")])
                await asyncio.sleep(1.0)  # the target and the client have settled
                r = await c.post(ingest, json=[loan(u, f"s{i}", branch)])
                t0 = time.monotonic()
                r.raise_for_status()
                deadline = t0 + (180 if warm else 30)
                # the subject names the branch in words ("… for Branch S3-…"): match its id
                while (arrived := inbox.find(branch)) is None:
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.01)
                if arrived is None:
                    print(f"sample {i}: no e-mail within 30 s", flush=True)
                    if not warm:
                        latencies.append(math.inf)  # infinitely late, not left out
                    warm = False
                    continue
                key = f"women_borrower_share|branch:{branch}".encode()
                value_at = watch.first_after(key, t0)
                split = f" (value on topic after {value_at - t0:.3f} s)" if value_at else ""
                print(
                    f"sample {i}: {arrived - t0:.3f} s{split}{' (warm-up)' if warm else ''}",
                    flush=True,
                )
                if not warm:
                    latencies.append(arrived - t0)
                    if value_at is not None:
                        upstream.append(value_at - t0)
                warm = False
            stop.set()
            await loader
            await watcher
            rate = sent[0] / (time.monotonic() - started)
    finally:
        for p in procs.values():
            p.stop()
        smtp.stop()
    missing = sum(1 for x in latencies if math.isinf(x))
    if missing == len(latencies):
        raise SystemExit(f"no e-mail arrived; logs in {logs}")
    p50, p99 = nearest_rank(latencies, 0.50), nearest_rank(latencies, 0.99)
    print(f"baseline ingest 202 round trip p50={statistics.median(baseline):.4f}s")
    if upstream:
        print(
            f"of which 202 -> indicator value on its topic: p50={statistics.median(upstream):.3f}s"
            f" max={max(upstream):.3f}s (the rest is the alert service and SMTP)"
        )
    intervals = ", ".join(f"{k}={v}" for k, v in polling.items()) or "emit and flush at defaults"
    print(f"for_days=0 group_wait=0 group_interval=0; {intervals}")
    arrived_max = max(x for x in latencies if not math.isinf(x))
    print(
        f"samples={len(latencies)} (of {i + 1} tried) missing={missing} "
        f"max arrived={arrived_max:.3f}s logs={logs}"
    )
    print(f"e2e_alert_latency p50={p50:.3f} p99={p99:.3f} missing={missing} rate={rate:.0f}")


def nearest_rank(values: list[float], q: float) -> float:
    """The nearest-rank percentile: an actual sample, so a missing e-mail (inf) counts as the
    latest of all instead of being interpolated or dropped."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


if __name__ == "__main__":
    asyncio.run(main())
