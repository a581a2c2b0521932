"""Drive the real indicator service from outside, the way production runs it.

Produce a generated stream to the canonical topics (with a per-test suffix), run `spm serve
indicators` as a subprocess, wait until its exactly-once offsets (stored in its own PostgreSQL
schema, table ``consumer_offsets`` of services/common/offsets.py) reach the end of every
partition, read every value through the HTTP API and compare with the oracle.
Nothing here imports the service: it is a black box behind its environment and its API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from contracts.envelope import CanonicalEvent, to_kafka
from contracts.topics import CLIENTS, COMPLAINTS, DEADLETTER, INDICATORS, LOANS
from services.common.bus import KafkaBus, Message
from tests.indicators.oracle.oracle import (
    COUNT_CODES,
    QUANTILE_CODES,
    Oracle,
    Value,
    family,
)
from tests.infra import free_port as free_port  # re-exported for the oracle's users

REPO = Path(__file__).resolve().parents[3]
SPM = REPO / ".venv" / "bin" / "spm"
READER_KEY = "oracle-reader-key"
REL_TOL = Decimal("1e-9")
GNI = Decimal("150000")


def api_keys() -> str:
    digest = hashlib.sha256(READER_KEY.encode()).hexdigest()
    return json.dumps([{"name": "oracle", "sha256": digest, "scopes": ["indicators:read"]}])


# --- Kafka ---------------------------------------------------------------------------------


async def ensure_topics(bootstrap: str, suffix: str) -> None:
    bus = KafkaBus(bootstrap)
    try:
        await bus.ensure_topics(
            dataclasses.replace(spec, name=spec.name + suffix)
            for spec in (CLIENTS, LOANS, COMPLAINTS, DEADLETTER, INDICATORS)
        )
    finally:
        await bus.close()


def to_message(event: CanonicalEvent, suffix: str) -> Message:
    record = to_kafka(event)
    return Message(record.topic + suffix, record.value, record.key, tuple(record.headers))


async def produce(
    bootstrap: str,
    events: Iterable[CanonicalEvent],
    suffix: str,
    *,
    chunk: int = 5000,
    pause_s: float = 0.0,
    ends: dict[tuple[str, int], int] | None = None,
    hurry: asyncio.Event | None = None,
) -> dict[tuple[str, int], int]:
    """Send in arrival order (acks=all); returns the end offset of every partition written.

    ``pause_s`` between chunks spreads the stream over time (so that kills land while it
    flows); once ``hurry`` is set, the rest goes without pauses (nothing left to interrupt)."""
    ends = {} if ends is None else ends
    bus = KafkaBus(bootstrap)
    producer = bus.producer()
    await producer.start()
    try:
        batch: list[Message] = []
        for event in events:
            batch.append(to_message(event, suffix))
            if len(batch) >= chunk:
                await _send(producer, batch, ends)
                batch = []
                if pause_s and not (hurry is not None and hurry.is_set()):
                    await asyncio.sleep(pause_s)
        if batch:
            await _send(producer, batch, ends)
    finally:
        await producer.stop()
        await bus.close()
    return ends


async def _send(producer: Any, batch: Sequence[Message], ends: dict[tuple[str, int], int]) -> None:
    for delivery in await producer.send_many(batch):
        key = (delivery.topic, delivery.partition)
        ends[key] = max(ends.get(key, 0), delivery.offset + 1)


# --- the service as a subprocess --------------------------------------------------------------


@dataclass
class ServiceConfig:
    bootstrap: str
    database_url: str
    suffix: str
    group: str
    schema: str
    log_dir: Path
    extra_env: Mapping[str, str] = dataclasses.field(default_factory=dict)


class ServiceProcess:
    """One `spm serve indicators` instance; restartable, killable with SIGKILL."""

    def __init__(
        self, cfg: ServiceConfig, name: str = "indicators", args: tuple[str, ...] = ()
    ) -> None:
        self.cfg = cfg
        self.name = name
        self.args = args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INDICATORS_")}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.cfg.bootstrap,
            DATABASE_URL=self.cfg.database_url,
            INDICATORS_PORT=str(self.port),
            API_KEYS=api_keys(),
            INDICATORS_TOPIC_SUFFIX=self.cfg.suffix,
            INDICATORS_GROUP_ID=self.cfg.group,
            INDICATORS_DB_SCHEMA=self.cfg.schema,
            INDICATORS_GNI_PER_CAPITA=str(GNI),
            INDICATORS_TICK_SECONDS="1",
            INDICATORS_EMIT_INTERVAL_SECONDS="2",
        )
        env.update(self.cfg.extra_env)
        return env

    def start(self) -> None:
        self.starts += 1
        log = self.cfg.log_dir / f"{self.name}-{self.starts}.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(SPM), "serve", "indicators", *self.args],
                cwd=REPO,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no last commit."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def last_log(self, chars: int = 3000) -> str:
        log = self.cfg.log_dir / f"{self.name}-{self.starts}.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""

    async def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise AssertionError(f"{self.name} exited:\n{self.last_log()}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.5)
        raise AssertionError(f"{self.name} not ready after {timeout_s} s:\n{self.last_log()}")


async def stored_offsets(database_url: str, schema: str, group: str) -> dict[tuple[str, int], int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(
                text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"{schema}.consumer_offsets"}
            )
            return await read_offsets(conn, schema, group) if exists else {}
    finally:
        await engine.dispose()


async def read_offsets(
    conn: AsyncConnection, schema: str, group: str
) -> dict[tuple[str, int], int]:
    """The offsets the engine stored for ``group``, through an open connection (for polling)."""
    rows = await conn.execute(
        text(
            f'SELECT topic, "partition", next_offset FROM "{schema}".consumer_offsets'  # noqa: S608
            " WHERE group_id = :g"
        ),
        {"g": group},
    )
    return {(t, p): o for t, p, o in rows}


async def wait_caught_up(
    database_url: str,
    schema: str,
    group: str,
    ends: Mapping[tuple[str, int], int],
    timeout_s: float,
    alive: Sequence[ServiceProcess] = (),
) -> float:
    """Until the offsets the engine committed with its effects reach every partition's end."""
    started = time.monotonic()
    while True:
        stored = await stored_offsets(database_url, schema, group)
        behind = {
            tp: end - stored.get(tp, 0) for tp, end in ends.items() if stored.get(tp, 0) < end
        }
        if not behind:
            return time.monotonic() - started
        for service in alive:
            if not service.alive():
                raise AssertionError(f"{service.name} died:\n{service.last_log()}")
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"engine still behind after {timeout_s} s: {behind}")
        await asyncio.sleep(1)


# --- the API --------------------------------------------------------------------------------


async def api_values(client: httpx.AsyncClient, day: date) -> dict[tuple[str, str], dict[str, Any]]:
    response = await client.get("/v1/indicators", params={"as_of": day.isoformat()})
    assert response.status_code == 200, response.text
    body = json.loads(response.text, parse_float=Decimal)
    assert body["as_of"] == day.isoformat(), body["as_of"]
    return {(item["code"], item["segment"]): item for item in body["items"]}


async def business_date(client: httpx.AsyncClient) -> date:
    response = await client.get("/v1/indicators", params={"code": "active_clients"})
    assert response.status_code == 200, response.text
    return date.fromisoformat(response.json()["as_of"])


def reader(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url, timeout=120, headers={"Authorization": f"Bearer {READER_KEY}"}
    )


# --- comparison -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    code: str
    segment: str
    day: date
    field: str
    api: Any
    oracle: Any

    def __str__(self) -> str:
        return (
            f"{self.code} [{self.segment}] on {self.day}: {self.field} "
            f"api={self.api} oracle={self.oracle}"
        )


def _num(x: Any) -> Decimal | None:
    return None if x is None else Decimal(str(x)) if not isinstance(x, Decimal) else x


def _close(a: Decimal, b: Decimal) -> bool:
    if a == b:
        return True
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def compare_value(code: str, segment: str, day: date, api: Mapping[str, Any] | None,
                  oracle: Value) -> list[Mismatch]:  # fmt: skip
    if api is None:
        return [Mismatch(code, segment, day, "missing", None, oracle)]
    out = []
    approx = {"value"} if code not in COUNT_CODES else set()
    if code == "write_off_ratio":
        approx.add("denominator")  # the mean daily portfolio: a division
    fields: list[tuple[str, Decimal | int | None]] = [
        ("value", oracle.value),
        ("numerator", oracle.numerator),
        ("denominator", oracle.denominator),
    ]
    if code in QUANTILE_CODES:
        fields.append(("n", oracle.n))
    for name, expected in fields:
        got = _num(api.get(name))
        want = _num(expected)
        if got is None or want is None:
            ok = got is None and want is None
        else:
            ok = _close(got, want) if name in approx else got == want
        if not ok:
            out.append(Mismatch(code, segment, day, name, got, want))
    return out


def compare_day(
    oracle: Oracle, day: date, api: Mapping[tuple[str, str], Mapping[str, Any]]
) -> list[Mismatch]:
    """Every (code, segment) the oracle knows must be listed; every listed one must agree."""
    mismatches: list[Mismatch] = []
    wanted: set[tuple[str, str]] = set()
    for code in oracle.codes():
        wanted.update((code, segment) for segment in oracle.segments(code))
    for code, segment in api:
        try:
            family(code)
        except KeyError:
            mismatches.append(
                Mismatch(code, segment, day, "unknown code", api[(code, segment)], None)
            )
            continue
        wanted.add((code, segment))
    for code, segment in sorted(wanted):
        mismatches += compare_value(
            code, segment, day, api.get((code, segment)), oracle.value(code, segment, day)
        )
    return mismatches


def report(mismatches: Sequence[Mismatch], compared: int) -> str:
    by_code: dict[str, int] = {}
    for m in mismatches:
        by_code[m.code] = by_code.get(m.code, 0) + 1
    lines = [
        f"{len(mismatches)} mismatches over {compared} compared (code, segment, day) values",
        f"first: {mismatches[0]}",
        "per code: " + ", ".join(f"{c}={n}" for c, n in sorted(by_code.items())),
        "examples:",
    ]
    seen: set[str] = set()
    for m in mismatches:
        if m.code not in seen:
            seen.add(m.code)
            lines.append(f"  {m}")
    return "\n".join(lines)


def sample_days(first: date, last: date, count: int, seed: int) -> list[date]:
    """Evenly spread days plus the edges and a few random ones, sorted."""
    import random

    span = (last - first).days
    rng = random.Random(seed)
    days = {first, last}
    days.update(first + (last - first) * i // (count - 1) for i in range(count - 1))
    days.update(date.fromordinal(first.toordinal() + rng.randint(0, span)) for _ in range(4))
    return sorted(days)


async def compare_with_api(
    oracle: Oracle, url: str, days: Sequence[date]
) -> tuple[list[Mismatch], int]:
    mismatches: list[Mismatch] = []
    compared = 0
    async with reader(url) as client:
        for day in days:
            api = await api_values(client, day)
            compared += len(api)
            mismatches += compare_day(oracle, day, api)
    return mismatches, compared


async def compare_series_and_breakdown(
    oracle: Oracle, url: str, first: date, last: date, segments: Sequence[str]
) -> tuple[list[Mismatch], int]:
    """The series endpoint (every code, a few segments, each day from first to last) and the
    breakdown endpoint (every code and dimension, on ``last``) against the oracle."""
    mismatches: list[Mismatch] = []
    compared = 0
    async with reader(url) as client:
        for code in oracle.codes():
            for segment in segments:
                if segment not in oracle.segments(code):
                    continue
                response = await client.get(
                    f"/v1/indicators/{code}/series",
                    params={"segment": segment, "from": first.isoformat(), "to": last.isoformat()},
                )
                assert response.status_code == 200, response.text
                points = json.loads(response.text, parse_float=Decimal)["points"]
                by_day = {date.fromisoformat(p["as_of"]): p for p in points}
                for offset in range((last - first).days + 1):
                    day = date.fromordinal(first.toordinal() + offset)
                    compared += 1
                    mismatches += compare_value(
                        code, segment, day, by_day.get(day), oracle.value(code, segment, day)
                    )
            dims = {s.split(":")[0] for s in oracle.segments(code) if ":" in s}
            for dim in sorted(dims):
                params = {"by": dim, "as_of": last.isoformat()}
                response = await client.get(f"/v1/indicators/{code}/breakdown", params=params)
                assert response.status_code == 200, response.text
                items = json.loads(response.text, parse_float=Decimal)["items"]
                got = {item["segment"]: item for item in items}
                wanted = {s for s in oracle.segments(code) if s.startswith(f"{dim}:")} | set(got)
                for segment in sorted(wanted):
                    compared += 1
                    mismatches += compare_value(
                        code, segment, last, got.get(segment), oracle.value(code, segment, last)
                    )
    return mismatches, compared


def log(msg: str) -> None:
    sys.stderr.write(f"[oracle {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()
